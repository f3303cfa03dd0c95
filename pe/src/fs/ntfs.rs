//! NTFS through the `ntfs` crate (vendored: it reads the `$MFT` runs once, see the workspace
//! `Cargo.toml`), over the cached range view (the crate has no cache).
//!
//! The crate returns raw bytes for LZNT1-compressed and EFS-encrypted data without an error,
//! and ignores the initialized size of a value. So `read_file` reads the `$DATA` layout from
//! the raw attribute headers itself: it decompresses compressed files unit by unit
//! ([`super::lznt1`]), returns zeros past the initialized size, and refuses EFS-encrypted files
//! and reparse points (links, WOF/CompactOS-compressed files, cloud placeholders) with
//! [`FsError::Unsupported`] instead of returning garbage.
//!
//! `metadata` reports what Windows would: times and `FILE_ATTRIBUTE_*` bits from
//! `$STANDARD_INFORMATION`, the MFT record number as the hard-link identity, named `$DATA`
//! streams, junction and symbolic-link targets from `$REPARSE_POINT`, and the Interix
//! symbolic links ntfs-3g writes for `ln -s` (a SYSTEM file holding `IntxLNK\1` + UTF-16 target).

use std::io::Write;

use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{
    NtfsAttributeList, NtfsFileAttributeFlags, NtfsFileName, NtfsFileNamespace, NtfsVolumeFlags,
};
use ntfs::{Ntfs, NtfsAttribute, NtfsAttributeFlags, NtfsAttributeType, NtfsError, NtfsFile, NtfsReadSeek};

use super::dir_index::{DirIndex, Listed, Resolved};
use super::lznt1;
use super::range::RangeReader;
use super::bytes::{utf16_from_wtf8, wtf8_from_utf16};
use super::{components, shown, Bytes, DirEntry, EntryKind, FsError, FsReader, Metadata, Time, VolumeWarning};

pub struct NtfsReader {
    ntfs: Ntfs,
    io: RangeReader,
    label: Option<String>,
    warnings: Vec<VolumeWarning>,
    /// Record numbers from listings, by exact name; a name in another case, or an 8.3 alias,
    /// goes through the directory indexes from the root ([`lookup`]).
    index: DirIndex,
}

/// The root directory's MFT record.
const ROOT_RECORD: u64 = 5;

fn corrupt(path: &str, e: NtfsError) -> FsError {
    match e {
        NtfsError::NotADirectory { .. } => FsError::NotADirectory { path: path.into() },
        NtfsError::Io(source) => FsError::Io { path: path.into(), source },
        other => FsError::Corrupt { path: path.into(), fs: "ntfs", detail: other.to_string() },
    }
}

fn damaged(path: &str, detail: impl Into<String>) -> FsError {
    FsError::Corrupt { path: path.into(), fs: "ntfs", detail: detail.into() }
}

impl NtfsReader {
    /// Reads the boot sector, `$UpCase`, `$Volume` (label and flags) and the root directory.
    pub fn open(range: RangeReader) -> Result<Self, FsError> {
        let mut io = range;
        // The crate panics (`unreachable!`) on an I/O error inside its boot-sector parser, so
        // make sure the boot sector is there first.
        let mut boot = [0u8; 512];
        io.read_exact_at(0, &mut boot).map_err(|source| FsError::Io { path: "/".into(), source })?;
        let mut ntfs = Ntfs::new(&mut io).map_err(|e| corrupt("/", e))?;
        ntfs.read_upcase_table(&mut io).map_err(|e| corrupt("/$UpCase", e))?;
        ntfs.read_mft_runs(&mut io).map_err(|e| corrupt("/$MFT", e))?;
        ntfs.root_directory(&mut io).map_err(|e| corrupt("/", e))?;
        let label = ntfs
            .volume_name(&mut io)
            .and_then(|r| r.ok())
            .map(|n| n.name().to_string_lossy())
            .filter(|s| !s.is_empty());
        let mut warnings = Vec::new();
        match ntfs.volume_info(&mut io) {
            Ok(info) if info.flags().contains(NtfsVolumeFlags::IS_DIRTY) => warnings.push(VolumeWarning(
                "the NTFS volume is marked dirty (not cleanly unmounted, or errors found); boot \
                 Windows and run `chkdsk /f`, then shut down fully, before migrating"
                    .into(),
            )),
            Ok(_) => {}
            Err(e) => warnings.push(VolumeWarning(format!("the NTFS $Volume information is unreadable: {e}"))),
        }
        let index = DirIndex::new(ROOT_RECORD, <[u8]>::to_vec);
        Ok(NtfsReader { ntfs, io, label, warnings, index })
    }
}

/// The file at `path` (WTF-8 names), walking the directory indexes from the root. A name that
/// is UTF-8 is looked up through the index as Windows does (case-insensitively); one that is
/// not (an unpaired surrogate) by its exact UTF-16 units among the directory's entries.
fn lookup<'n>(ntfs: &'n Ntfs, io: &mut RangeReader, path: &[u8]) -> Result<NtfsFile<'n>, FsError> {
    let text = shown(path);
    let (raw, path) = (path, text.as_str());
    let not_found = || FsError::NotFound { path: path.into() };
    let mut file = ntfs.root_directory(io).map_err(|e| corrupt(path, e))?;
    for name in components(raw) {
        let next = {
            let index = file.directory_index(io).map_err(|e| corrupt(path, e))?;
            match std::str::from_utf8(name) {
                Ok(name) => {
                    let mut finder = index.finder();
                    let entry = NtfsFileNameIndex::find(&mut finder, ntfs, io, name)
                        .ok_or_else(not_found)?
                        .map_err(|e| corrupt(path, e))?;
                    entry.to_file(ntfs, io).map_err(|e| corrupt(path, e))?
                }
                Err(_) => {
                    let units = utf16_from_wtf8(name).ok_or_else(not_found)?;
                    let mut iter = index.entries();
                    let mut found = None;
                    while let Some(entry) = iter.next(io) {
                        let entry = entry.map_err(|e| corrupt(path, e))?;
                        let Some(key) = entry.key() else { continue };
                        let key = key.map_err(|e| corrupt(path, e))?;
                        if key.name().u16_iter().eq(units.iter().copied()) {
                            found = Some(entry.to_file(ntfs, io).map_err(|e| corrupt(path, e))?);
                            break;
                        }
                    }
                    found.ok_or_else(not_found)?
                }
            }
        };
        file = next;
    }
    Ok(file)
}

/// The file at `path`, from the record numbers in `index` where it has them (listing the
/// directories on the way), else as [`lookup`] finds it.
fn find<'n>(ntfs: &'n Ntfs, io: &mut RangeReader, index: &mut DirIndex, path: &[u8]) -> Result<NtfsFile<'n>, FsError> {
    let comps: Vec<&[u8]> = components(path).collect();
    let found = index.resolve(&comps, |dir, record| {
        let file = ntfs.file(io, record).map_err(|e| corrupt(&shown(path), e))?;
        list(io, &file, &shown(&dir.join(&b'/'))).map(|found| found.iter().map(Found::listed).collect())
    })?;
    match found {
        Resolved::Id(record) => ntfs.file(io, record).map_err(|e| corrupt(&shown(path), e)),
        Resolved::Missing | Resolved::Through => lookup(ntfs, io, path),
    }
}

/// One entry of a directory index, with its MFT record number.
struct Found {
    name: Bytes,
    record: u64,
    kind: EntryKind,
    /// The data size the index records (files).
    size: u64,
}

/// The entries of directory `dir` (shown as `path`): long and POSIX names, not 8.3 aliases
/// or `.`.
fn list(io: &mut RangeReader, dir: &NtfsFile, path: &str) -> Result<Vec<Found>, FsError> {
    let index = dir.directory_index(io).map_err(|e| corrupt(path, e))?;
    let mut iter = index.entries();
    let mut out = Vec::new();
    while let Some(entry) = iter.next(io) {
        let entry = entry.map_err(|e| corrupt(path, e))?;
        let Some(key) = entry.key() else { continue };
        let file_name = key.map_err(|e| corrupt(path, e))?;
        // An 8.3 alias has its own index entry next to the long name.
        if file_name.namespace() == NtfsFileNamespace::Dos {
            continue;
        }
        let name = Bytes::new(wtf8_from_utf16(file_name.name().u16_iter()));
        if name == "." {
            continue;
        }
        let attrs = file_name.file_attributes();
        let kind = if attrs.contains(NtfsFileAttributeFlags::REPARSE_POINT) {
            EntryKind::Symlink
        } else if file_name.is_directory() {
            EntryKind::Dir
        } else {
            EntryKind::File
        };
        let size = if kind == EntryKind::File { file_name.data_size() } else { 0 };
        out.push(Found { name, record: entry.file_reference().file_record_number(), kind, size });
    }
    Ok(out)
}

impl Found {
    fn listed(&self) -> Listed {
        Listed { name: self.name.as_ref().to_vec(), id: self.record, is_dir: self.kind == EntryKind::Dir }
    }
}

fn attributes_of(file: &NtfsFile) -> NtfsFileAttributeFlags {
    file.info().map(|i| i.file_attributes()).unwrap_or(NtfsFileAttributeFlags::empty())
}

// ---------------------------------------------------------------------------------------------
// Times, attributes and reparse points.

/// `FILE_ATTRIBUTE_*` bits used here.
const ATTR_SYSTEM: u32 = 0x4;
const ATTR_DIRECTORY: u32 = 0x10;
const ATTR_REPARSE_POINT: u32 = 0x400;
const ATTR_ENCRYPTED: u32 = 0x4000;

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const NT_EPOCH_OFFSET: i128 = 116_444_736_000_000_000;

/// An NTFS time (100 ns units since 1601, UTC) as Unix time; `None` for 0 (never set).
pub fn nt_time(t: u64) -> Option<Time> {
    if t == 0 {
        return None;
    }
    let since_unix = i128::from(t) - NT_EPOCH_OFFSET;
    let secs = since_unix.div_euclid(10_000_000);
    let nanos = (since_unix.rem_euclid(10_000_000) * 100) as u32;
    Some(Time { secs: secs as i64, nanos })
}

/// The raw `$STANDARD_INFORMATION` fields (the crate drops attribute bits it does not know,
/// such as the cloud-files `RECALL_ON_*` and `PINNED` bits).
#[derive(Debug, Clone, Copy, Default)]
struct StdInfo {
    created: u64,
    modified: u64,
    changed: u64,
    accessed: u64,
    attributes: u32,
}

fn std_info<'n>(file: &NtfsFile<'n>, io: &mut RangeReader) -> Option<StdInfo> {
    for attr in file.attributes_raw() {
        let Ok(attr) = attr else { continue };
        if !matches!(attr.ty(), Ok(NtfsAttributeType::StandardInformation)) || !attr.is_resident() {
            continue;
        }
        let Ok(ntfs::attribute_value::NtfsAttributeValue::Resident(v)) = attr.value(io) else { return None };
        let d = v.data();
        if d.len() < 0x24 {
            return None;
        }
        let le64 = |at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap_or_default());
        return Some(StdInfo {
            created: le64(0),
            modified: le64(8),
            changed: le64(0x10),
            accessed: le64(0x18),
            attributes: u32::from_le_bytes([d[0x20], d[0x21], d[0x22], d[0x23]]),
        });
    }
    None
}

/// Reparse tags that are links.
const TAG_MOUNT_POINT: u32 = 0xA000_0003;
const TAG_SYMLINK: u32 = 0xA000_000C;
/// A WSL (Linux subsystem) symbolic link: version 2, then the UTF-8 target.
const TAG_LX_SYMLINK: u32 = 0xA000_001D;

/// What a reparse point with tag `tag` is, for messages.
fn describe_tag(tag: u32) -> &'static str {
    match tag {
        0x8000_0017 => "WOF-compressed, e.g. CompactOS or compact.exe",
        0x8000_0013 => "Data Deduplication",
        0x8000_001B => "an app execution alias",
        0x8000_0023 => "an AF_UNIX socket",
        0x8000_0024 => "a WSL FIFO",
        0x8000_0025 => "a WSL character device",
        0x8000_0026 => "a WSL block device",
        0x8000_0007 => "Single Instance Storage",
        0x8000_0014 => "an NFS special file",
        0x8000_000A | 0x8000_0012 => "a DFS link",
        0xC000_0004 | 0x8000_0004 => "HSM, offline storage",
        t if t & 0xFFFF_0FFF == 0x9000_001A => "a cloud-files placeholder, e.g. OneDrive Files On-Demand",
        0x8000_0019 => "a cloud-files placeholder, e.g. OneDrive Files On-Demand",
        _ => "unknown type",
    }
}

/// Kinds of file WSL marks with a reparse tag: not regular files at all.
fn is_special_tag(tag: u32) -> bool {
    matches!(tag, 0x8000_0023..=0x8000_0026)
}

/// A parsed `$REPARSE_POINT` value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reparse {
    /// A junction (mount point) or a symbolic link, with its target.
    Link(String),
    /// Any other tag.
    Other(u32),
    /// A link tag whose buffer is damaged.
    Damaged(u32),
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16_lossy(&units)
}

/// Parses a reparse buffer: tag, data length, reserved, then the tag's data. For junctions and
/// symbolic links the target is the print name, or the substitute name without its `\??\`
/// prefix; backslashes are kept.
fn parse_reparse(buf: &[u8]) -> Option<Reparse> {
    if buf.len() < 8 {
        return None;
    }
    let tag = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = usize::from(u16::from_le_bytes([buf[4], buf[5]]));
    let data = &buf[8..];
    let data = &data[..len.min(data.len())];
    let le16 = |at: usize| usize::from(u16::from_le_bytes([data[at], data[at + 1]]));
    let names = |path_at: usize| -> Option<String> {
        if data.len() < path_at {
            return None;
        }
        let path = &data[path_at..];
        let (so, sl, po, pl) = (le16(0), le16(2), le16(4), le16(6));
        let print = path.get(po..po.checked_add(pl)?).map(utf16).filter(|s| !s.is_empty());
        let subst = path.get(so..so.checked_add(sl)?).map(utf16).filter(|s| !s.is_empty());
        print.or_else(|| subst.map(|s| s.strip_prefix(r"\??\").map(str::to_string).unwrap_or(s)))
    };
    Some(match tag {
        TAG_MOUNT_POINT => names(8).map(Reparse::Link).unwrap_or(Reparse::Damaged(tag)),
        TAG_SYMLINK => names(12).map(Reparse::Link).unwrap_or(Reparse::Damaged(tag)),
        TAG_LX_SYMLINK => match data.get(4..) {
            Some(t) if data.len() > 4 && t.len() <= 4096 => Reparse::Link(String::from_utf8_lossy(t).into_owned()),
            _ => Reparse::Damaged(tag),
        },
        other => Reparse::Other(other),
    })
}

/// The target of an Interix symbolic link (what ntfs-3g writes for `ln -s`): `IntxLNK\1`
/// followed by the UTF-16 target.
fn parse_interix_symlink(data: &[u8]) -> Option<String> {
    let target = data.strip_prefix(b"IntxLNK\x01")?;
    (target.len() >= 2 && target.len() % 2 == 0).then(|| utf16(target))
}

/// Other Interix special files (devices) ntfs-3g writes for `mknod`.
fn is_interix_device(data: &[u8]) -> bool {
    data.starts_with(b"IntxCHR\0") || data.starts_with(b"IntxBLK\0")
}

/// The longest Interix link inplace reads: the magic and 4096 UTF-16 units.
const INTERIX_MAX: u64 = 8 + 2 * 4096;

/// Reads up to `max` bytes of an attribute value (for small values: reparse data, Interix links).
fn read_value_head<'n, 'f>(attr: &NtfsAttribute<'n, 'f>, io: &mut RangeReader, max: u64) -> Result<Vec<u8>, NtfsError> {
    let mut value = attr.value(io)?;
    let len = attr.value_length().min(max) as usize;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = value.read(io, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// The layout of a non-resident $DATA value, from its raw attribute headers.

/// A run of clusters: where it starts on the volume (`None`: sparse) and how many bytes.
type Run = (Option<u64>, u64);

/// The fields of a non-resident attribute header the crate does not expose.
#[derive(Debug, Clone, Copy)]
struct NonResidentHeader {
    lowest_vcn: i64,
    compression_unit: u8,
    data_size: u64,
    initialized_size: u64,
}

/// Reads the non-resident header of `attr` (which lies in `file`) from the file record on disk.
/// The crate reads file records the same way (contiguously from the record's position) and
/// applies the update-sequence fixups, which this does too: the 8-byte fields can straddle a
/// fixed-up sector end.
fn nonresident_header<'n>(
    ntfs: &Ntfs,
    io: &mut RangeReader,
    file: &NtfsFile<'n>,
    attr: &NtfsAttribute<'n, '_>,
) -> Result<NonResidentHeader, String> {
    let (Some(rec_at), Some(attr_at)) = (file.position().value(), attr.position().value()) else {
        return Err("the file record has no position".into());
    };
    let offset = attr_at.get().checked_sub(rec_at.get()).ok_or("the attribute lies before its record")? as usize;
    let size = ntfs.file_record_size() as usize;
    if offset + 0x40 > size {
        return Err(format!("the attribute header at record offset {offset} runs past the {size}-byte record"));
    }
    let mut rec = vec![0u8; size];
    io.read_exact_at(rec_at.get(), &mut rec).map_err(|e| format!("reading the file record: {e}"))?;
    apply_fixups(&mut rec)?;
    let h = &rec[offset..offset + 0x40];
    let le64 = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().unwrap_or_default());
    if h[8] == 0 {
        return Err("the attribute is resident on disk".into());
    }
    Ok(NonResidentHeader {
        lowest_vcn: le64(0x10) as i64,
        compression_unit: h[0x22],
        data_size: le64(0x30),
        initialized_size: le64(0x38),
    })
}

/// The update-sequence fixups of a file record (the last two bytes of every 512-byte block are
/// stored in the update-sequence array).
fn apply_fixups(rec: &mut [u8]) -> Result<(), String> {
    let usa_at = usize::from(u16::from_le_bytes([rec[4], rec[5]]));
    let count = usize::from(u16::from_le_bytes([rec[6], rec[7]]));
    if count == 0 || usa_at + 2 * count > rec.len() || (count - 1) * 512 > rec.len() {
        return Err("the file record's update sequence array is invalid".into());
    }
    let usn = [rec[usa_at], rec[usa_at + 1]];
    for k in 1..count {
        let at = k * 512 - 2;
        if rec[at..at + 2] != usn {
            return Err("the file record is torn (update sequence mismatch)".into());
        }
        let (a, b) = (rec[usa_at + 2 * k], rec[usa_at + 2 * k + 1]);
        rec[at] = a;
        rec[at + 1] = b;
    }
    Ok(())
}

/// The unnamed `$DATA` of a file as it lies on disk, for a non-resident value.
#[derive(Debug, Clone)]
struct DataLayout {
    size: u64,
    initialized: u64,
    compression_unit: u8,
    /// The cluster runs in VCN order, over all the attribute's pieces.
    runs: Vec<Run>,
}

/// Collects the data runs of one non-resident attribute (one that is not itself the head of an
/// attribute-list chain).
fn runs_of<'n>(attr: &NtfsAttribute<'n, '_>, io: &mut RangeReader, out: &mut Vec<Run>) -> Result<(), NtfsError> {
    match attr.value(io)? {
        ntfs::attribute_value::NtfsAttributeValue::NonResident(v) => {
            for run in v.data_runs() {
                let run = run?;
                out.push((run.data_position().value().map(|p| p.get()), run.allocated_size()));
            }
            Ok(())
        }
        _ => Err(NtfsError::UnexpectedResidentAttribute { position: attr.position() }),
    }
}

/// The `$ATTRIBUTE_LIST` of `file`, if it has one.
fn attribute_list<'n, 'f>(
    file: &'f NtfsFile<'n>,
    io: &mut RangeReader,
    path: &str,
) -> Result<Option<NtfsAttributeList<'n, 'f>>, FsError> {
    for attr in file.attributes_raw() {
        let attr = attr.map_err(|e| corrupt(path, e))?;
        if matches!(attr.ty(), Ok(NtfsAttributeType::AttributeList)) {
            return attr.structured_value::<_, NtfsAttributeList>(io).map(Some).map_err(|e| corrupt(path, e));
        }
    }
    Ok(None)
}

/// One `$DATA` attribute (data stream) of a file, as its first piece describes it.
#[derive(Debug, Clone)]
struct Stream {
    name: String,
    size: u64,
    flags: NtfsAttributeFlags,
    resident: bool,
}

/// The `$DATA` attributes of `file`, unnamed and named.
///
/// The crate's flattened attribute iterator (and so `NtfsFile::data`) goes wrong when a value is
/// split over several file records and its first piece is in the base record: it skips that
/// piece's list entry and returns the next piece, whose header says 0 bytes, as a stream of its
/// own. So with an attribute list this goes by the list's entries for first pieces (lowest VCN
/// 0), and otherwise by the base record's own attributes.
fn data_streams<'n>(
    ntfs: &'n Ntfs,
    io: &mut RangeReader,
    file: &NtfsFile<'n>,
    path: &str,
) -> Result<Vec<Stream>, FsError> {
    let stream = |attr: &NtfsAttribute| -> Result<Stream, FsError> {
        Ok(Stream {
            name: attr.name().map_err(|e| corrupt(path, e))?.to_string_lossy(),
            size: attr.value_length(),
            flags: attr.flags(),
            resident: attr.is_resident(),
        })
    };
    let mut out = Vec::new();
    let Some(list) = attribute_list(file, io, path)? else {
        for attr in file.attributes_raw() {
            let attr = attr.map_err(|e| corrupt(path, e))?;
            if matches!(attr.ty(), Ok(NtfsAttributeType::Data)) {
                out.push(stream(&attr)?);
            }
        }
        return Ok(out);
    };
    let mut entries = list.entries();
    while let Some(entry) = entries.next(io) {
        let entry = entry.map_err(|e| corrupt(path, e))?;
        if !matches!(entry.ty(), Ok(NtfsAttributeType::Data)) || entry.lowest_vcn().value() != 0 {
            continue;
        }
        let piece_file = entry.to_file(ntfs, io).map_err(|e| corrupt(path, e))?;
        let attr = entry.to_attribute(&piece_file).map_err(|e| corrupt(path, e))?;
        out.push(stream(&attr)?);
    }
    Ok(out)
}

/// The layout of the unnamed `$DATA` of `file`; `None` when it is resident (or missing). With
/// an attribute list, the value may be split over attributes in several file records; they
/// are followed in the list's (VCN) order.
fn data_layout<'n>(
    ntfs: &'n Ntfs,
    io: &mut RangeReader,
    file: &NtfsFile<'n>,
    path: &str,
) -> Result<Option<DataLayout>, FsError> {
    let Some(list) = attribute_list(file, io, path)? else {
        let mut direct = None;
        for attr in file.attributes_raw() {
            let attr = attr.map_err(|e| corrupt(path, e))?;
            if matches!(attr.ty(), Ok(NtfsAttributeType::Data)) && attr.name().map(|n| n.is_empty()).unwrap_or(false) {
                direct = Some(attr);
                break;
            }
        }
        let Some(attr) = direct else { return Ok(None) };
        if attr.is_resident() {
            return Ok(None);
        }
        let h = nonresident_header(ntfs, io, file, &attr).map_err(|d| damaged(path, d))?;
        let mut runs = Vec::new();
        runs_of(&attr, io, &mut runs).map_err(|e| corrupt(path, e))?;
        return Ok(Some(DataLayout {
            size: h.data_size,
            initialized: h.initialized_size,
            compression_unit: h.compression_unit,
            runs,
        }));
    };
    let mut entries = list.entries();
    let mut layout: Option<DataLayout> = None;
    let mut clusters = 0u64;
    let cluster = u64::from(ntfs.cluster_size());
    while let Some(entry) = entries.next(io) {
        let entry = entry.map_err(|e| corrupt(path, e))?;
        if !matches!(entry.ty(), Ok(NtfsAttributeType::Data)) || !entry.name().is_empty() {
            continue;
        }
        let piece_file = entry.to_file(ntfs, io).map_err(|e| corrupt(path, e))?;
        let attr = entry.to_attribute(&piece_file).map_err(|e| corrupt(path, e))?;
        if attr.is_resident() {
            return Ok(None);
        }
        let h = nonresident_header(ntfs, io, &piece_file, &attr).map_err(|d| damaged(path, d))?;
        if u64::try_from(h.lowest_vcn).ok() != Some(clusters) {
            return Err(damaged(
                path,
                format!("a $DATA piece starts at VCN {} where {clusters} was expected", h.lowest_vcn),
            ));
        }
        let l = layout.get_or_insert(DataLayout {
            size: h.data_size,
            initialized: h.initialized_size,
            compression_unit: h.compression_unit,
            runs: Vec::new(),
        });
        let before = l.runs.len();
        runs_of(&attr, io, &mut l.runs).map_err(|e| corrupt(path, e))?;
        clusters += l.runs[before..].iter().map(|r| r.1 / cluster).sum::<u64>();
    }
    Ok(layout)
}

/// Bytes of a file's data that the volume stores, of `size` in all: a resident value is all
/// stored; a non-resident one stores its non-sparse runs up to the initialized size (the rest
/// reads as zeros). A compressed value is counted at its initialized size: its clusters hold
/// LZNT1 data, and what it holds uncompressed is not known without reading it. When the layout
/// cannot be read, `size`.
fn allocated_bytes<'n>(ntfs: &'n Ntfs, io: &mut RangeReader, file: &NtfsFile<'n>, path: &str, size: u64, flags: NtfsAttributeFlags) -> u64 {
    let Ok(Some(l)) = data_layout(ntfs, io, file, path) else { return size };
    let initialized = l.initialized.min(l.size);
    if flags.contains(NtfsAttributeFlags::COMPRESSED) {
        return initialized;
    }
    let mut at = 0u64;
    let mut stored = 0u64;
    for &(pos, bytes) in &l.runs {
        if at >= initialized {
            break;
        }
        if pos.is_some() {
            stored += bytes.min(initialized - at);
        }
        at = at.saturating_add(bytes);
    }
    stored
}

/// Streams an uncompressed non-resident value from its runs: real runs from the volume,
/// sparse runs and everything past the initialized size as zeros, `size` bytes in all.
fn read_runs(io: &mut RangeReader, l: &DataLayout, path: &str, out: &mut dyn Write) -> Result<u64, FsError> {
    let initialized = l.initialized.min(l.size);
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    let write = |out: &mut dyn Write, data: &[u8]| {
        out.write_all(data).map_err(|source| FsError::Io { path: path.into(), source })
    };
    for &(pos, bytes) in &l.runs {
        let mut off = 0u64;
        while off < bytes && done < l.size {
            let n = (bytes - off).min(buf.len() as u64).min(l.size - done) as usize;
            let chunk = &mut buf[..n];
            match pos {
                Some(p) if done < initialized => {
                    io.read_exact_at(p.saturating_add(off), chunk)
                        .map_err(|source| FsError::Io { path: path.into(), source })?;
                    if done + n as u64 > initialized {
                        chunk[(initialized - done) as usize..].fill(0);
                    }
                }
                _ => chunk.fill(0),
            }
            write(out, chunk)?;
            off += n as u64;
            done += n as u64;
        }
        if done >= l.size {
            break;
        }
    }
    if done < initialized {
        return Err(damaged(path, format!("the data runs end after {done} of {} bytes", l.size)));
    }
    // Allocated space may end before the (zero) tail past the initialized size.
    buf.fill(0);
    while done < l.size {
        let n = (l.size - done).min(buf.len() as u64) as usize;
        write(out, &buf[..n])?;
        done += n as u64;
    }
    Ok(done)
}

/// Streams the unnamed `$DATA` of `file` into `out`: resident values through the crate,
/// non-resident ones from their runs (decompressed when compressed).
fn read_data<'n>(
    ntfs: &'n Ntfs,
    io: &mut RangeReader,
    file: &NtfsFile<'n>,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64, FsError> {
    let streams = data_streams(ntfs, io, file, path)?;
    let s = streams.iter().find(|s| s.name.is_empty()).ok_or_else(|| damaged(path, "no $DATA attribute"))?;
    if s.flags.contains(NtfsAttributeFlags::ENCRYPTED) {
        return Err(FsError::Unsupported { path: path.into(), fs: "ntfs", what: "an EFS-encrypted file".into() });
    }
    if !s.resident {
        let l =
            data_layout(ntfs, io, file, path)?.ok_or_else(|| damaged(path, "the non-resident $DATA has no layout"))?;
        if l.size != s.size {
            return Err(damaged(path, format!("$DATA says {} bytes in one place and {} in another", s.size, l.size)));
        }
        if s.flags.contains(NtfsAttributeFlags::COMPRESSED) {
            return read_compressed(io, u64::from(ntfs.cluster_size()), &l, path, out);
        }
        return read_runs(io, &l, path, out);
    }
    // A resident value is never split, so it is the only unnamed $DATA the crate can find.
    let item = file.data(io, "").ok_or_else(|| damaged(path, "no $DATA attribute"))?.map_err(|e| corrupt(path, e))?;
    let attr = item.to_attribute().map_err(|e| corrupt(path, e))?;
    let data = read_value_head(&attr, io, s.size).map_err(|e| corrupt(path, e))?;
    if data.len() as u64 != s.size {
        return Err(damaged(path, format!("the resident data holds {} of {} bytes", data.len(), s.size)));
    }
    out.write_all(&data).map_err(|source| FsError::Io { path: path.into(), source })?;
    Ok(s.size)
}

// ---------------------------------------------------------------------------------------------
// Reading compressed data.

/// Walks a run list cluster by cluster.
struct RunCursor<'a> {
    runs: &'a [Run],
    index: usize,
    /// Clusters of `runs[index]` already passed.
    within: u64,
    cluster: u64,
}

/// What one compression unit's clusters are.
#[derive(Default)]
struct UnitMap {
    /// Runs of real clusters, in VCN order: (volume byte, clusters).
    real: Vec<(u64, u64)>,
    real_clusters: u64,
    /// Clusters in sparse runs.
    sparse_clusters: u64,
}

impl RunCursor<'_> {
    fn take(&mut self, mut n: u64, map: &mut UnitMap) {
        map.real.clear();
        map.real_clusters = 0;
        map.sparse_clusters = 0;
        while n > 0 && self.index < self.runs.len() {
            let (pos, bytes) = self.runs[self.index];
            let len = bytes / self.cluster;
            let k = (len - self.within.min(len)).min(n);
            match pos {
                Some(p) => {
                    let at = p + self.within * self.cluster;
                    match map.real.last_mut() {
                        Some(last) if last.0 + last.1 * self.cluster == at => last.1 += k,
                        _ => map.real.push((at, k)),
                    }
                    map.real_clusters += k;
                }
                None => map.sparse_clusters += k,
            }
            n -= k;
            self.within += k;
            if self.within >= len {
                self.index += 1;
                self.within = 0;
            }
        }
        // Clusters past the last run are unallocated: they read as zeros, like sparse ones,
        // but do not mark the unit compressed.
    }
}

/// Streams a compressed `$DATA` value unit by unit: a unit with no real clusters is zeros, one
/// with no sparse clusters is stored as is, and otherwise its real clusters hold LZNT1 chunks.
fn read_compressed(
    io: &mut RangeReader,
    cluster: u64,
    l: &DataLayout,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64, FsError> {
    let exp = l.compression_unit;
    if exp == 0 || exp > 8 {
        return Err(FsError::Unsupported {
            path: path.into(),
            fs: "ntfs",
            what: format!("a compressed file with a compression unit of 2^{exp} clusters"),
        });
    }
    let unit_clusters = 1u64 << exp;
    let unit_bytes = unit_clusters * cluster;
    if unit_bytes > 4 << 20 {
        return Err(FsError::Unsupported {
            path: path.into(),
            fs: "ntfs",
            what: format!("a compressed file with {unit_bytes}-byte compression units"),
        });
    }
    let mut unit = vec![0u8; unit_bytes as usize];
    let mut packed = vec![0u8; unit_bytes as usize];
    let mut cursor = RunCursor { runs: &l.runs, index: 0, within: 0, cluster };
    let mut map = UnitMap::default();
    let mut done = 0u64;
    while done < l.size {
        let want = (l.size - done).min(unit_bytes) as usize;
        cursor.take(unit_clusters, &mut map);
        if map.real_clusters == 0 || done >= l.initialized {
            unit[..want].fill(0);
        } else {
            let stored = map.sparse_clusters == 0;
            let dst = if stored { &mut unit } else { &mut packed };
            let mut at = 0usize;
            for &(pos, n) in &map.real {
                let len = (n * cluster) as usize;
                io.read_exact_at(pos, &mut dst[at..at + len])
                    .map_err(|source| FsError::Io { path: path.into(), source })?;
                at += len;
            }
            if stored {
                unit[at..].fill(0);
            } else {
                lznt1::decompress_unit(&packed[..at], &mut unit).map_err(|e| {
                    damaged(path, format!("compression unit {} (file byte {done}): {e}", done / unit_bytes))
                })?;
            }
            if done + want as u64 > l.initialized {
                unit[(l.initialized - done) as usize..want].fill(0);
            }
        }
        out.write_all(&unit[..want]).map_err(|source| FsError::Io { path: path.into(), source })?;
        done += want as u64;
    }
    Ok(done)
}

// ---------------------------------------------------------------------------------------------

impl FsReader for NtfsReader {
    fn fs_type(&self) -> &'static str {
        "ntfs"
    }

    fn label(&mut self) -> Option<String> {
        self.label.clone()
    }

    fn warnings(&self) -> Vec<VolumeWarning> {
        self.warnings.clone()
    }

    fn stat(&mut self, raw: &[u8]) -> Result<DirEntry, FsError> {
        let file = find(&self.ntfs, &mut self.io, &mut self.index, raw)?;
        let name = Bytes::from(components(raw).last().unwrap_or(b"/"));
        let text = shown(raw);
        let path = text.as_str();
        let kind = if attributes_of(&file).contains(NtfsFileAttributeFlags::REPARSE_POINT) {
            EntryKind::Symlink
        } else if file.is_directory() {
            EntryKind::Dir
        } else {
            EntryKind::File
        };
        let size = if kind == EntryKind::File {
            let streams = data_streams(&self.ntfs, &mut self.io, &file, path).unwrap_or_default();
            streams.iter().find(|s| s.name.is_empty()).map_or(0, |s| s.size)
        } else {
            0
        };
        Ok(DirEntry { name, kind, size })
    }

    fn metadata(&mut self, raw: &[u8]) -> Result<Metadata, FsError> {
        let ntfs = &self.ntfs;
        let io = &mut self.io;
        let file = find(ntfs, io, &mut self.index, raw)?;
        let text = shown(raw);
        let path = text.as_str();
        let is_dir = file.is_directory();
        let si = std_info(&file, io);
        let mut attributes = si.map(|s| s.attributes);
        if is_dir {
            attributes = attributes.map(|a| a | ATTR_DIRECTORY);
        }
        let attr_bits = attributes.unwrap_or(0);

        let mut size = 0u64;
        let mut data_flags = None;
        let mut streams = Vec::new();
        for s in data_streams(ntfs, io, &file, path)? {
            if !s.name.is_empty() {
                streams.push((s.name, s.size));
            } else if data_flags.is_none() {
                size = s.size;
                data_flags = Some(s.flags);
            }
        }
        let mut reparse = None;
        let mut names = 0u32;
        let mut iter = file.attributes();
        while let Some(item) = iter.next(io) {
            let item = item.map_err(|e| corrupt(path, e))?;
            let attr = item.to_attribute().map_err(|e| corrupt(path, e))?;
            // Attribute types the crate does not know are skipped, not fatal. ($DATA is read
            // above: this iterator can mistake a later piece of a split value for a stream.)
            match attr.ty() {
                Ok(NtfsAttributeType::ReparsePoint) => {
                    let buf = read_value_head(&attr, io, 16 * 1024).map_err(|e| corrupt(path, e))?;
                    reparse = parse_reparse(&buf);
                }
                Ok(NtfsAttributeType::FileName) => {
                    if let Ok(name) = attr.structured_value::<_, NtfsFileName>(io) {
                        if name.namespace() != NtfsFileNamespace::Dos {
                            names += 1;
                        }
                    }
                }
                _ => {}
            }
        }

        let mut kind = if is_dir { EntryKind::Dir } else { EntryKind::File };
        let mut target = None;
        let mut unreadable = None;
        match reparse {
            Some(Reparse::Link(t)) => {
                kind = EntryKind::Symlink;
                target = Some(Bytes::from(t));
            }
            Some(Reparse::Damaged(tag)) => {
                unreadable = Some(format!("a link (reparse tag {tag:#010X}) whose target data is damaged"));
            }
            Some(Reparse::Other(tag)) if is_special_tag(tag) => {
                kind = EntryKind::Other;
                unreadable =
                    Some(format!("a reparse point of tag {tag:#010X} ({}), not a regular file", describe_tag(tag)));
            }
            Some(Reparse::Other(tag)) if !is_dir => {
                unreadable =
                    Some(format!("a reparse point of tag {tag:#010X} ({}) the reader cannot read", describe_tag(tag)));
            }
            Some(Reparse::Other(_)) => {}
            None if attr_bits & ATTR_REPARSE_POINT != 0 => {
                unreadable = Some("marked as a reparse point, but its $REPARSE_POINT data is missing".into());
            }
            None => {}
        }
        if kind == EntryKind::File && unreadable.is_none() {
            let encrypted = data_flags.is_some_and(|f| f.contains(NtfsAttributeFlags::ENCRYPTED));
            if encrypted || attr_bits & ATTR_ENCRYPTED != 0 {
                unreadable = Some(
                    "EFS-encrypted: the data can only be read with the user's key in Windows; decrypt it \
                     there (cipher /d) or copy it out before migrating"
                        .into(),
                );
            } else if data_flags.is_none() {
                unreadable = Some("the file record has no $DATA attribute".into());
            } else if attr_bits & ATTR_SYSTEM != 0 && (10..=INTERIX_MAX).contains(&size) {
                // ntfs-3g's symbolic links (and device nodes) are SYSTEM files with a magic.
                // (A file whose data cannot be read is just not one of them.)
                let mut head = Vec::new();
                if read_data(ntfs, io, &file, path, &mut head).is_err() {
                    head.clear();
                }
                if let Some(t) = parse_interix_symlink(&head) {
                    kind = EntryKind::Symlink;
                    target = Some(Bytes::from(t));
                } else if is_interix_device(&head) {
                    kind = EntryKind::Other;
                }
            }
        }
        if kind != EntryKind::File {
            size = 0;
        }
        let allocated = match (kind, data_flags) {
            (EntryKind::File, Some(flags)) => Some(allocated_bytes(ntfs, io, &file, path, size, flags)),
            _ => None,
        };
        let nlink = if names > 0 { Some(names) } else { Some(u32::from(file.hard_link_count())).filter(|n| *n > 0) };
        Ok(Metadata {
            kind,
            size,
            allocated,
            mode: None,
            uid: None,
            gid: None,
            mtime: si.and_then(|s| nt_time(s.modified)),
            atime: si.and_then(|s| nt_time(s.accessed)),
            ctime: si.and_then(|s| nt_time(s.changed)),
            crtime: si.and_then(|s| nt_time(s.created)),
            attributes,
            link_id: Some(file.file_record_number()),
            nlink,
            target,
            streams,
            unreadable,
            xattrs: Default::default(),
        })
    }

    fn read_dir(&mut self, raw: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let io = &mut self.io;
        let dir = find(&self.ntfs, io, &mut self.index, raw)?;
        let found = list(io, &dir, &shown(raw))?;
        let comps: Vec<&[u8]> = components(raw).collect();
        let listed: Vec<Listed> = found.iter().map(Found::listed).collect();
        self.index.listed(&comps, dir.file_record_number(), &listed);
        Ok(found.into_iter().map(|f| DirEntry { name: f.name, kind: f.kind, size: f.size }).collect())
    }

    fn read_file(&mut self, raw: &[u8], out: &mut dyn Write) -> Result<u64, FsError> {
        let ntfs = &self.ntfs;
        let io = &mut self.io;
        let file = find(ntfs, io, &mut self.index, raw)?;
        let text = shown(raw);
        let path = text.as_str();
        if file.is_directory() {
            return Err(FsError::IsADirectory { path: path.into() });
        }
        let file_attrs = attributes_of(&file);
        if file_attrs.contains(NtfsFileAttributeFlags::REPARSE_POINT) {
            return Err(FsError::Unsupported {
                path: path.into(),
                fs: "ntfs",
                what: "a reparse point (a link, or a WOF/CompactOS-compressed file)".into(),
            });
        }
        if file_attrs.contains(NtfsFileAttributeFlags::ENCRYPTED) {
            return Err(FsError::Unsupported { path: path.into(), fs: "ntfs", what: "an EFS-encrypted file".into() });
        }
        read_data(ntfs, io, &file, path, out)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    use super::*;
    use crate::fs::testimg::{self, HashSink, NtfsMount};

    const MIB: u64 = 1 << 20;
    const SPARSE_LEN: u64 = 4500 * MIB + 7;
    const LONG_UNITS: usize = 640;
    const HOLES_STEP: usize = 65_536;
    const HOLES_EXTENTS: usize = 600;
    const HOLES_LEN: u64 = ((HOLES_EXTENTS - 1) * HOLES_STEP + 4096) as u64;
    const UNICODE_DIR: &str = "Документы";
    const UNICODE_FILE: &str = "файл Ünïcødé 文件.txt";

    /// One NTFS image made by mkntfs and populated through ntfs-3g, shared by the tests, with
    /// what the ntfs-3g mount said about its files.
    struct Fixture {
        _dir: tempfile::TempDir,
        image: PathBuf,
        /// sha256 and length of each file written, by path.
        content: Vec<(&'static str, String, u64)>,
        /// `system.ntfs_attrib_be` of the compressed file.
        compressed_attrib: u32,
        /// mtime of `/a.txt` as `stat` on the mount said.
        a_mtime: Time,
        zone: &'static [u8],
    }

    fn text(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0u32;
        while v.len() < n {
            v.extend_from_slice(format!("{i:05} the quick brown fox jumps over the lazy dog; ").as_bytes());
            i += 1;
        }
        v.truncate(n);
        v
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(build_fixture)
    }

    fn build_fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("ntfs.img");
        testimg::mkntfs(&image, 96 * MIB, "FIXTURE");
        let m = NtfsMount::mount(&image, &dir.path().join("mnt"), "");
        let root = m.path().to_path_buf();
        let mut content = Vec::new();
        let mut write = |rel: &'static str, data: &[u8]| {
            let p = root.join(rel);
            fs::write(&p, data).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
            content.push((rel, testimg::sha256(data), data.len() as u64));
        };

        // Compression: new files in a directory marked compressed are compressed.
        fs::create_dir(root.join("comp")).unwrap();
        testimg::setfattr(&root.join("comp"), "system.ntfs_attrib_be", "0x00000810");
        // Compressible units, an incompressible stretch (stored units), a zero unit, and a tail
        // that ends mid-unit.
        let mut data = text(5 * 65_536 + 1000);
        data.extend_from_slice(&testimg::noise(150_000, 7));
        data.extend_from_slice(&[0u8; 70_000]);
        data.extend_from_slice(&text(3_333));
        write("comp/data.bin", &data);
        write("comp/small.txt", &text(5_000));
        // Several megabytes, so the run list is long.
        let mut big = Vec::new();
        for k in 0..24 {
            big.extend_from_slice(&if k % 3 == 2 { testimg::noise(131_072, k) } else { text(131_072) });
        }
        write("comp/big.bin", &big);
        // So many compressed units (each a real and a sparse run) that the run list outgrows
        // the file record: ntfs-3g splits $DATA over records listed in an $ATTRIBUTE_LIST.
        let unit = text(65_536);
        let mut long = Vec::with_capacity(LONG_UNITS * unit.len());
        for k in 0..LONG_UNITS {
            long.extend_from_slice(format!("unit {k:06}").as_bytes());
            long.extend_from_slice(&unit[11..]);
        }
        write("comp/long.bin", &long);
        let attrib = testimg::getfattr_hex(&root.join("comp/data.bin"), "system.ntfs_attrib_be");
        let compressed_attrib = u32::from_str_radix(attrib.trim_start_matches("0x"), 16).unwrap();

        // A file with an alternate data stream (ntfs-3g's default streams_interface=xattr
        // maps user.* to named $DATA streams), a hard link, a set mtime.
        write("a.txt", b"hello\n");
        let zone: &'static [u8] = b"[ZoneTransfer]\r\nZoneId=3\r\n";
        testimg::setfattr(&root.join("a.txt"), "user.Zone.Identifier", "[ZoneTransfer]\r\nZoneId=3\r\n");
        testimg::run(Command::new("touch").args(["-d", "2021-03-04 05:06:07.123456789"]).arg(root.join("a.txt")));
        fs::hard_link(root.join("a.txt"), root.join("hard.txt")).unwrap();
        let st = fs::symlink_metadata(root.join("a.txt")).unwrap();
        let a_mtime = Time { secs: st.mtime(), nanos: st.mtime_nsec() as u32 };

        // Links: ntfs-3g's own symlinks, and a junction set as raw reparse data.
        std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../dir/x", root.join("rel")).unwrap();
        fs::create_dir(root.join("junc")).unwrap();
        testimg::setfattr(
            &root.join("junc"),
            "system.ntfs_reparse_data",
            &testimg::junction_reparse_hex(r"C:\Users\Public"),
        );
        // A WOF-compressed file as far as the reparse tag goes.
        fs::write(root.join("wof.txt"), b"placeholder").unwrap();
        let wof = [1u32, 1, 1, 0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        testimg::setfattr(&root.join("wof.txt"), "system.ntfs_reparse_data", &testimg::reparse_hex(0x8000_0017, &wof));
        // A device node (an Interix IntxCHR file).
        testimg::run(Command::new("mknod").arg(root.join("chr")).args(["c", "1", "3"]));

        // Unicode names.
        fs::create_dir(root.join(UNICODE_DIR)).unwrap();
        let p = root.join(UNICODE_DIR).join(UNICODE_FILE);
        fs::write(&p, "unicode\n").unwrap();

        // A file larger than 4 GiB that is almost all hole.
        let f = fs::File::create(root.join("sparse.bin")).unwrap();
        f.set_len(SPARSE_LEN - 7).unwrap();
        f.write_all_at(b"THE END", SPARSE_LEN - 7).unwrap();
        drop(f);
        // A file for the EFS test to patch.
        write("efs.txt", b"secret\n");
        // A name for the surrogate test to turn into one with an unpaired surrogate.
        fs::create_dir(root.join("sur")).unwrap();
        write("sur/lone-Q-surrogate.txt", b"surrogate\n");
        // An uncompressed file of many small extents between holes: its runs outgrow the
        // record too.
        let f = fs::File::create(root.join("holes.bin")).unwrap();
        let mut holes = vec![0u8; HOLES_STEP * HOLES_EXTENTS];
        for k in 0..HOLES_EXTENTS {
            let piece = testimg::noise(4096, k as u64 + 100);
            f.write_all_at(&piece, (k * HOLES_STEP) as u64).unwrap();
            holes[k * HOLES_STEP..k * HOLES_STEP + 4096].copy_from_slice(&piece);
        }
        drop(f);
        holes.truncate(HOLES_LEN as usize);
        content.push(("holes.bin", testimg::sha256(&holes), holes.len() as u64));
        m.unmount();
        Fixture { _dir: dir, image, content, compressed_attrib, a_mtime, zone }
    }

    fn reader(image: &Path) -> Box<dyn FsReader> {
        testimg::open(image, "ntfs")
    }

    #[test]
    fn nt_time_conversion() {
        assert_eq!(nt_time(0), None);
        assert_eq!(nt_time(116_444_736_000_000_000), Some(Time { secs: 0, nanos: 0 }));
        assert_eq!(nt_time(116_444_736_000_000_001), Some(Time { secs: 0, nanos: 100 }));
        // Before 1970.
        assert_eq!(nt_time(116_444_735_990_000_000), Some(Time { secs: -1, nanos: 0 }));
        assert_eq!(nt_time(116_444_735_999_999_999), Some(Time { secs: -1, nanos: 999_999_900 }));
    }

    #[test]
    fn reparse_buffers() {
        let hex = testimg::junction_reparse_hex(r"C:\Data");
        let bytes: Vec<u8> =
            (2..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        assert_eq!(parse_reparse(&bytes), Some(Reparse::Link(r"C:\Data".into())));
        // A symbolic link with only a substitute name, relative flag set.
        let subst: Vec<u8> = r"\??\D:\x\y".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut data = Vec::new();
        for v in [0u16, subst.len() as u16, subst.len() as u16, 0] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(&subst);
        let mut buf = TAG_SYMLINK.to_le_bytes().to_vec();
        buf.extend_from_slice(&(data.len() as u16).to_le_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&data);
        assert_eq!(parse_reparse(&buf), Some(Reparse::Link(r"D:\x\y".into())));
        // Damaged: names point outside the buffer.
        buf[8] = 0xFF;
        buf[10] = 0xFF;
        assert_eq!(parse_reparse(&buf), Some(Reparse::Damaged(TAG_SYMLINK)));
        assert_eq!(parse_reparse(&buf[..10]), Some(Reparse::Damaged(TAG_SYMLINK)));
        assert_eq!(parse_reparse(&[1, 2]), None);
        // WSL symlink.
        let mut lx = TAG_LX_SYMLINK.to_le_bytes().to_vec();
        lx.extend_from_slice(&[8, 0, 0, 0, 2, 0, 0, 0]);
        lx.extend_from_slice(b"/tmp");
        assert_eq!(parse_reparse(&lx), Some(Reparse::Link("/tmp".into())));
        assert_eq!(parse_reparse(&testimg_bytes(0x9000_601A)), Some(Reparse::Other(0x9000_601A)));
        assert!(describe_tag(0x9000_601A).contains("OneDrive"));
        assert!(describe_tag(0x8000_0017).contains("WOF"));
    }

    fn testimg_bytes(tag: u32) -> Vec<u8> {
        let mut b = tag.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0, 0, 0]);
        b
    }

    #[test]
    fn interix_links() {
        let mut d = b"IntxLNK\x01".to_vec();
        d.extend("a/b".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(parse_interix_symlink(&d).as_deref(), Some("a/b"));
        assert_eq!(parse_interix_symlink(b"IntxLNK\x01"), None);
        assert_eq!(parse_interix_symlink(b"IntxLNK\x01a"), None);
        assert!(is_interix_device(b"IntxCHR\0\x01\0\0\0\0\0\0\0"));
    }

    #[test]
    fn compressed_files_read_back_identical() {
        let f = fixture();
        assert_ne!(f.compressed_attrib & 0x800, 0, "ntfs-3g did not compress the file: {:#x}", f.compressed_attrib);
        let mut r = reader(&f.image);
        for (path, sha, len) in f.content.iter().filter(|c| c.0.starts_with("comp/")) {
            let m = r.metadata(path.as_bytes()).unwrap();
            assert_eq!((m.kind, m.size), (EntryKind::File, *len), "{path}");
            assert_ne!(m.attributes.unwrap() & 0x800, 0, "{path} is not compressed: {m:?}");
            assert_eq!(m.unreadable, None);
            let mut sink = HashSink::default();
            assert_eq!(r.read_file(path.as_bytes(), &mut sink).unwrap(), *len, "{path}");
            assert_eq!(sink.len, *len);
            assert_eq!(&sink.hex(), sha, "{path} decompressed wrong");
        }
        // The other files too (resident and non-resident, uncompressed).
        for (path, sha, len) in &f.content {
            let data = r.read_small(path.as_bytes(), 64 * MIB).unwrap();
            assert_eq!((&testimg::sha256(&data), data.len() as u64), (sha, *len), "{path}");
        }
    }

    #[test]
    fn compressed_layout_is_what_ntfs3g_wrote() {
        let f = fixture();
        let mut r = NtfsReader::open(range_of(&f.image)).unwrap();
        let file = lookup(&r.ntfs, &mut r.io, b"/comp/data.bin").unwrap();
        let l = data_layout(&r.ntfs, &mut r.io, &file, "/comp/data.bin").unwrap().unwrap();
        assert_eq!(l.compression_unit, 4);
        assert_eq!(l.size, l.initialized);
        // Compressed units leave sparse runs behind.
        assert!(l.runs.iter().any(|r| r.0.is_none()), "{:?}", l.runs);
        assert!(l.runs.iter().any(|r| r.0.is_some()));
        // The long file's $DATA is split over several records.
        let file = lookup(&r.ntfs, &mut r.io, b"/comp/long.bin").unwrap();
        let has_list = file.attributes_raw().any(|a| a.unwrap().ty().ok() == Some(NtfsAttributeType::AttributeList));
        assert!(has_list, "comp/long.bin has no attribute list");
        let long = data_layout(&r.ntfs, &mut r.io, &file, "/comp/long.bin").unwrap().unwrap();
        assert_eq!(long.size, LONG_UNITS as u64 * 65_536);
        assert!(long.runs.len() >= LONG_UNITS, "{} runs", long.runs.len());
        let file = lookup(&r.ntfs, &mut r.io, b"/holes.bin").unwrap();
        let has_list = file.attributes_raw().any(|a| a.unwrap().ty().ok() == Some(NtfsAttributeType::AttributeList));
        assert!(has_list, "holes.bin has no attribute list");
        // The crate's own lookup takes a later piece of such a split value for the stream
        // (ColinFinck/ntfs: the first piece is in the base record and its list entry skipped);
        // `data_streams` exists because of this. If this starts failing, the crate was fixed.
        let item = file.data(&mut r.io, "").unwrap().unwrap();
        assert_eq!(item.to_attribute().unwrap().value_length(), 0, "the crate now finds the first piece");
        assert_eq!(r.stat(b"/holes.bin").unwrap().size, HOLES_LEN);
        // Both kinds of unit are there: LZNT1-compressed (real clusters, then sparse ones) and
        // stored (16 real clusters, for the noise).
        let cluster = u64::from(r.ntfs.cluster_size());
        let mut cursor = RunCursor { runs: &l.runs, index: 0, within: 0, cluster };
        let mut map = UnitMap::default();
        let (mut compressed, mut stored) = (0, 0);
        for _ in 0..l.size.div_ceil(16 * cluster) {
            cursor.take(16, &mut map);
            match (map.real_clusters, map.sparse_clusters) {
                (16, 0) => stored += 1,
                (1..=15, 1..) => compressed += 1,
                _ => {}
            }
        }
        assert!(compressed >= 5 && stored >= 1, "{compressed} compressed and {stored} stored units: {:?}", l.runs);
    }

    fn range_of(image: &Path) -> RangeReader {
        let dev = crate::disk::device::Device::open(image).unwrap();
        RangeReader::whole(std::sync::Arc::new(dev))
    }

    #[test]
    fn metadata_of_files_streams_and_hard_links() {
        let f = fixture();
        let mut r = reader(&f.image);
        let a = r.metadata(b"/a.txt").unwrap();
        assert_eq!((a.kind, a.size), (EntryKind::File, 6));
        assert_eq!(a.mtime, Some(f.a_mtime));
        assert_eq!(a.mtime, Some(Time { secs: 1_614_834_367, nanos: 123_456_700 }));
        assert!(a.atime.is_some() && a.ctime.is_some() && a.crtime.is_some());
        assert_eq!(a.streams, vec![("Zone.Identifier".to_string(), f.zone.len() as u64)]);
        assert_eq!(a.nlink, Some(2));
        assert_eq!((a.mode, a.uid, a.gid), (None, None, None));
        assert_ne!(a.attributes.unwrap() & 0x20, 0, "archive bit: {:?}", a.attributes);
        let h = r.metadata(b"/HARD.TXT").unwrap();
        assert_eq!(h.link_id, a.link_id);
        assert!(a.link_id.unwrap() >= 64, "{:?}", a.link_id);
        assert_ne!(r.metadata(b"/efs.txt").unwrap().link_id, a.link_id);
        let d = r.metadata(b"/comp").unwrap();
        assert_eq!((d.kind, d.size), (EntryKind::Dir, 0));
        assert_eq!(d.attributes.unwrap() & 0x810, 0x810);
        let root = r.metadata(b"/").unwrap();
        assert_eq!((root.kind, root.link_id), (EntryKind::Dir, Some(5)));
        assert!(matches!(r.metadata(b"/nope"), Err(FsError::NotFound { .. })));

        let u = r.metadata(format!("/{UNICODE_DIR}/{UNICODE_FILE}").as_bytes()).unwrap();
        assert_eq!((u.kind, u.size), (EntryKind::File, 8));
        assert_eq!(r.read_small(format!("/{UNICODE_DIR}/{UNICODE_FILE}").as_bytes(), 100).unwrap(), b"unicode\n");
        assert!(r.read_dir(format!("/{UNICODE_DIR}").as_bytes()).unwrap().iter().any(|e| e.name == UNICODE_FILE));
    }

    #[test]
    fn names_in_another_case_and_after_a_listing_find_the_same_record() {
        let f = fixture();
        let mut r = reader(&f.image);
        let a = r.metadata(b"/a.txt").unwrap();
        // Not listed yet: found through the directory index, case-insensitively.
        assert_eq!(r.metadata(b"/A.TXT").unwrap().link_id, a.link_id);
        // Listed: the listing's record numbers, and the index for a name in another case.
        assert!(r.read_dir(b"/").unwrap().iter().any(|e| e.name == "a.txt"));
        assert_eq!(r.metadata(b"/a.txt").unwrap().link_id, a.link_id);
        assert_eq!(r.metadata(b"/A.Txt").unwrap().link_id, a.link_id);
        assert_eq!(r.read_small(b"/A.TXT", 100).unwrap(), b"hello\n");
        assert!(matches!(r.metadata(b"/nope"), Err(FsError::NotFound { .. })));
        let u = format!("/{}/{UNICODE_FILE}", UNICODE_DIR.to_uppercase());
        assert_eq!(r.read_small(u.as_bytes(), 100).unwrap(), b"unicode\n");
    }

    #[test]
    fn links_and_reparse_points() {
        let f = fixture();
        let mut r = reader(&f.image);
        let j = r.metadata(b"/junc").unwrap();
        assert_eq!((j.kind, j.target.as_ref().and_then(|t| t.to_str())), (EntryKind::Symlink, Some(r"C:\Users\Public")));
        assert_eq!(j.unreadable, None);
        // ntfs-3g writes `ln -s` as an Interix symlink: a SYSTEM file holding IntxLNK\1 + UTF-16.
        let l = r.metadata(b"/link").unwrap();
        assert_eq!((l.kind, l.target.as_ref().and_then(|t| t.to_str()), l.size), (EntryKind::Symlink, Some("a.txt"), 0));
        assert_ne!(l.attributes.unwrap() & ATTR_SYSTEM, 0);
        assert_eq!(r.metadata(b"/rel").unwrap().target.as_ref().and_then(|t| t.to_str()), Some("../dir/x"));
        let w = r.metadata(b"/wof.txt").unwrap();
        assert_eq!(w.kind, EntryKind::File);
        let why = w.unreadable.unwrap();
        assert!(why.contains("0x80000017") && why.contains("WOF"), "{why}");
        assert!(matches!(r.read_file(b"/wof.txt", &mut Vec::new()), Err(FsError::Unsupported { .. })));
        assert_eq!(r.metadata(b"/chr").unwrap().kind, EntryKind::Other);
        // The listing goes by the index entries: every reparse point is a Symlink there, and
        // an Interix link a (SYSTEM) file.
        let listed = r.read_dir(b"/").unwrap();
        let kind_of = |n: &str| listed.iter().find(|e| e.name == n).map(|e| e.kind);
        assert_eq!(kind_of("junc"), Some(EntryKind::Symlink));
        assert_eq!(kind_of("wof.txt"), Some(EntryKind::Symlink));
        assert_eq!(kind_of("link"), Some(EntryKind::File));
    }

    /// A sink that checks every byte but the last `tail` is zero, without keeping them.
    struct ZeroSink {
        len: u64,
        first_nonzero: Option<u64>,
        tail: Vec<u8>,
    }

    impl std::io::Write for ZeroSink {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
            for (i, piece) in data.chunks(ZEROS.len()).enumerate() {
                if self.first_nonzero.is_none() && piece != &ZEROS[..piece.len()] {
                    let at = piece.iter().position(|b| *b != 0).unwrap_or(0);
                    self.first_nonzero = Some(self.len + (i * ZEROS.len() + at) as u64);
                }
            }
            self.len += data.len() as u64;
            self.tail.extend_from_slice(data);
            let keep = self.tail.len().saturating_sub(16);
            self.tail.drain(..keep);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn streams_a_sparse_file_over_4_gib() {
        let f = fixture();
        let mut r = reader(&f.image);
        let m = r.metadata(b"/sparse.bin").unwrap();
        assert_eq!(m.size, SPARSE_LEN);
        // Only the cluster(s) holding the tail are stored.
        assert!(m.allocated.is_some_and(|a| a > 0 && a <= 64 << 10), "{:?}", m.allocated);
        let holes = r.metadata(b"/holes.bin").unwrap();
        assert_eq!(holes.allocated, Some((HOLES_EXTENTS * 4096) as u64), "one 4 KiB piece per extent");
        assert_eq!(r.metadata(b"/a.txt").unwrap().allocated, Some(6), "resident");
        assert_ne!(m.attributes.unwrap() & 0x200, 0, "sparse attribute: {:?}", m.attributes);
        let mut sink = ZeroSink { len: 0, first_nonzero: None, tail: Vec::new() };
        assert_eq!(r.read_file(b"/sparse.bin", &mut sink).unwrap(), SPARSE_LEN);
        assert_eq!(sink.len, SPARSE_LEN);
        assert_eq!(sink.first_nonzero, Some(SPARSE_LEN - 7));
        assert!(sink.tail.ends_with(b"THE END"));
    }

    #[test]
    fn a_name_with_an_unpaired_surrogate_is_kept_exactly() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("sur.img");
        testimg::run(Command::new("cp").arg("--sparse=always").arg(&f.image).arg(&copy));
        // Windows allows any UTF-16 in a name; ntfs-3g writes only valid names, so the `Q` of
        // the name is patched to U+D800 where it stands: in the file's $FILE_NAME and in its
        // directory's index. (A name's prefix is looked for: the whole name may straddle a
        // sector end, whose last two bytes the update sequence array holds.)
        let name: Vec<u8> = "lone-Q".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let q = 5 * 2;
        let mut img = fs::read(&copy).unwrap();
        let mut patched = 0;
        let mut at = 0;
        while let Some(i) = img[at..].windows(name.len()).position(|w| w == name.as_slice()) {
            let pos = at + i + q;
            assert!(pos % 512 < 510, "the patch must not touch a fixup");
            img[pos..pos + 2].copy_from_slice(&0xD800u16.to_le_bytes());
            patched += 1;
            at = pos;
        }
        assert!(patched >= 2, "found the name {patched} times");
        fs::write(&copy, &img).unwrap();
        drop(img);
        let mut r = reader(&copy);
        let names: Vec<Bytes> = r.read_dir(b"/sur").unwrap().into_iter().map(|e| e.name).collect();
        let wtf8 = b"lone-\xed\xa0\x80-surrogate.txt";
        assert_eq!(names, vec![Bytes::new(wtf8.to_vec())]);
        assert_eq!(names[0].to_string(), "lone-\\xed\\xa0\\x80-surrogate.txt");
        let path = [b"/sur/".as_slice(), wtf8].concat();
        let m = r.metadata(&path).unwrap();
        assert_eq!((m.kind, m.size), (EntryKind::File, 10));
        assert_eq!(r.read_small(&path, 100).unwrap(), b"surrogate\n");
        assert!(matches!(r.metadata(b"/sur/lone-Q-surrogate.txt"), Err(FsError::NotFound { .. })));
        assert!(matches!(r.metadata("/sur/lone-\u{FFFD}-surrogate.txt".as_bytes()), Err(FsError::NotFound { .. })));
    }

    #[test]
    fn efs_files_are_unreadable() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("efs.img");
        testimg::run(Command::new("cp").arg("--sparse=always").arg(&f.image).arg(&copy));
        // Set FILE_ATTRIBUTE_ENCRYPTED in efs.txt's $STANDARD_INFORMATION, as EFS would (ntfs-3g
        // cannot encrypt).
        let at = {
            let mut r = NtfsReader::open(range_of(&copy)).unwrap();
            let file = lookup(&r.ntfs, &mut r.io, b"/efs.txt").unwrap();
            let rec = file.position().value().unwrap().get();
            let si = file
                .attributes_raw()
                .map(|a| a.unwrap())
                .find(|a| a.ty().ok() == Some(NtfsAttributeType::StandardInformation))
                .unwrap();
            let attr_at = si.position().value().unwrap().get();
            let mut hdr = [0u8; 0x18];
            r.io.read_exact_at(attr_at, &mut hdr).unwrap();
            let value_at = attr_at + u64::from(u16::from_le_bytes([hdr[0x14], hdr[0x15]]));
            let flags_at = value_at + 0x20;
            assert!((flags_at - rec) % 512 < 508, "the patch must not touch a fixup");
            flags_at
        };
        let img = fs::OpenOptions::new().read(true).write(true).open(&copy).unwrap();
        let mut flags = [0u8; 4];
        img.read_exact_at(&mut flags, at).unwrap();
        let v = u32::from_le_bytes(flags) | ATTR_ENCRYPTED;
        img.write_all_at(&v.to_le_bytes(), at).unwrap();
        drop(img);
        let mut r = reader(&copy);
        let m = r.metadata(b"/efs.txt").unwrap();
        assert_ne!(m.attributes.unwrap() & ATTR_ENCRYPTED, 0);
        assert!(m.unreadable.as_deref().unwrap_or("").contains("EFS"), "{m:?}");
        assert_eq!(m.kind, EntryKind::File);
        assert!(matches!(r.read_file(b"/efs.txt", &mut Vec::new()), Err(FsError::Unsupported { .. })));
    }
}
