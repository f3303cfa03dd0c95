//! `capture/manifest.json`: what a finished capture holds, and the checks a reader applies
//! before trusting it (its own SHA-256 and bounds on every count and size).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::format::{self, CHUNK, HOLE_MAX, MAX_SEGMENT_LIMIT, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::migrate::entry::{Entry, Kind, Skipped};
use crate::migrate::job_info::JobInfo;

/// Largest manifest a reader loads.
pub const MAX_MANIFEST_BYTES: u64 = 512 << 20;
/// Bounds on counts and sizes a manifest may claim.
pub const MAX_ENTRIES: usize = 20_000_000;
pub const MAX_SEGMENTS: usize = 99_999;
pub const MAX_ENTRY_SIZE: u64 = 1 << 44;

/// The manifest of a finished capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version: 1.
    pub format: u16,
    /// Hex SHA-256 fingerprint of the plan (entries, users, layout options).
    pub plan_sha256: String,
    /// Unix seconds (UTC): when the capture started (its first run) and when it finished.
    pub started: u64,
    pub finished: u64,
    /// The job: source disk and partition, OS, rules, restore choices.
    #[serde(default, deserialize_with = "crate::migrate::job_info::null_is_default")]
    pub info: JobInfo,
    /// The accounts whose profiles were captured, by name on the old OS.
    pub users: Vec<String>,
    /// Largest raw size of a data record.
    pub chunk_size: u32,
    /// Segment size limit used when cutting segments.
    pub segment_limit: u64,
    pub zstd_level: i32,
    /// Captured entries, in record order.
    pub entries: Vec<StoredEntry>,
    /// Items not in the store, with the reason: those the plan left out, then those that
    /// could not be read during the capture.
    pub skipped: Vec<Skipped>,
    pub segments: Vec<SegmentInfo>,
    pub totals: Totals,
}

/// One captured entry, with where its data is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    #[serde(flatten)]
    pub entry: Entry,
    /// The id its records carry (its position in the capture plan).
    pub id: u32,
    /// CRC-32 of the whole data (`0` when there is none).
    pub crc32: u32,
    /// Where its records start; `None` when it has no data (directories, links, empty
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataLoc>,
}

/// The first record of an entry and how many records (consecutive in segment order,
/// possibly crossing into following segments) hold its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLoc {
    /// Segment number (from 1).
    pub segment: u32,
    /// Byte offset of the first record's header in that segment.
    pub offset: u64,
    pub records: u32,
}

/// One archive segment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// `seg-00001.ipa`, …
    pub name: String,
    pub bytes: u64,
    /// Hex SHA-256 of the whole file.
    pub sha256: String,
    pub records: u32,
}

/// Sums over the capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    /// Bytes of file data (sum of entry sizes).
    pub bytes: u64,
    /// Of those, bytes recorded as holes.
    pub hole_bytes: u64,
    /// Bytes of all segment files.
    pub stored_bytes: u64,
    pub records: u64,
    pub skipped: u64,
}

/// Hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Manifest {
    /// The JSON bytes as stored, and the matching `manifest.sha256` line.
    pub fn encode(&self) -> Result<(Vec<u8>, String), serde_json::Error> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        let line = format!("{}  {}\n", hex(&Sha256::digest(&json)), format::MANIFEST);
        Ok((json, line))
    }

    /// Parses stored bytes after checking them against the `manifest.sha256` line, then
    /// checks every bound.
    pub(crate) fn decode(json: &[u8], sha_line: &str) -> Result<Manifest, String> {
        let want = sha_line
            .strip_suffix('\n')
            .unwrap_or(sha_line)
            .strip_suffix(&format!("  {}", format::MANIFEST))
            .filter(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or("manifest.sha256 is not one line \"<64 hex digits>  manifest.json\"")?;
        let got = hex(&Sha256::digest(json));
        if !want.eq_ignore_ascii_case(&got) {
            return Err(format!("its SHA-256 is {got}, manifest.sha256 says {want}"));
        }
        let m: Manifest = serde_json::from_slice(json).map_err(|e| format!("not valid manifest JSON: {e}"))?;
        m.check()?;
        Ok(m)
    }

    /// Checks counts, sizes and locations against each other, so a reader never trusts a
    /// size the segments cannot hold.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.format != format::VERSION {
            return Err(format!("manifest format {} is not supported (this inplace reads 1)", self.format));
        }
        if self.chunk_size == 0 || self.chunk_size > 4 * CHUNK {
            return Err(format!("chunk size {} is out of bounds", self.chunk_size));
        }
        if self.segments.len() > MAX_SEGMENTS || self.entries.len() > MAX_ENTRIES {
            return Err(format!(
                "{} segments and {} entries is over the bounds",
                self.segments.len(),
                self.entries.len()
            ));
        }
        let mut stored = 0u64;
        let mut records = 0u64;
        for (i, s) in self.segments.iter().enumerate() {
            let n = i as u32 + 1;
            if s.name != format::segment_name(n) {
                return Err(format!("segment {n} is named {:?}", s.name));
            }
            let min = SEGMENT_HEADER_LEN as u64 + u64::from(s.records) * RECORD_HEADER_LEN as u64;
            if s.bytes < min || s.bytes > MAX_SEGMENT_LIMIT + RECORD_HEADER_LEN as u64 + u64::from(4 * CHUNK) {
                return Err(format!("segment {} claims {} bytes for {} records", s.name, s.bytes, s.records));
            }
            if s.sha256.len() != 64 || !s.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("segment {} has no valid SHA-256", s.name));
            }
            stored += s.bytes;
            records += u64::from(s.records);
        }
        let mut ids = std::collections::HashSet::with_capacity(self.entries.len());
        let mut data_records = 0u64;
        let mut prev: Option<(u32, u64)> = None;
        for e in &self.entries {
            let what = &e.entry.source;
            if !ids.insert(e.id) {
                return Err(format!("entry id {} appears twice ({what})", e.id));
            }
            if e.entry.size > MAX_ENTRY_SIZE {
                return Err(format!("{what}: a size of {} bytes is over the bound", e.entry.size));
            }
            match (&e.data, e.entry.kind) {
                (None, _) if e.entry.size > 0 => return Err(format!("{what}: {} bytes but no data", e.entry.size)),
                (None, _) => {}
                (Some(_), k) if k != Kind::File => return Err(format!("{what}: a {k:?} with data")),
                (Some(d), _) => {
                    let seg = d.segment as usize;
                    if d.segment == 0 || seg > self.segments.len() {
                        return Err(format!("{what}: segment {} does not exist", d.segment));
                    }
                    if d.offset < SEGMENT_HEADER_LEN as u64 || d.offset >= self.segments[seg - 1].bytes {
                        return Err(format!("{what}: offset {} is outside segment {}", d.offset, d.segment));
                    }
                    if prev.is_some_and(|p| p >= (d.segment, d.offset)) {
                        return Err(format!("{what}: its data is not after the previous entry's"));
                    }
                    prev = Some((d.segment, d.offset));
                    // Every record holds at most HOLE_MAX raw bytes, and its header takes room
                    // in the segments from this one on.
                    let room: u64 = self.segments[seg - 1..].iter().map(|s| s.bytes).sum::<u64>() - d.offset;
                    if d.records == 0
                        || u64::from(d.records) * RECORD_HEADER_LEN as u64 > room
                        || e.entry.size > u64::from(d.records) * u64::from(HOLE_MAX)
                        || e.entry.size == 0
                    {
                        return Err(format!(
                            "{what}: {} bytes in {} records from segment {} offset {} do not fit the segments",
                            e.entry.size, d.records, d.segment, d.offset
                        ));
                    }
                    data_records += u64::from(d.records);
                }
            }
        }
        if data_records > records {
            return Err(format!("the entries claim {data_records} records, the segments hold {records}"));
        }
        let bytes: u64 = self.entries.iter().map(|e| e.entry.size).sum();
        let t = &self.totals;
        if t.entries != self.entries.len() as u64
            || t.bytes != bytes
            || t.stored_bytes != stored
            || t.records != records
        {
            return Err("the totals do not match the entries and segments".into());
        }
        Ok(())
    }

    /// The entry with record id `id`.
    pub fn find(&self, id: u32) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }
}
