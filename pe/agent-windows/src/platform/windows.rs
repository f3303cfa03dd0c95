//! Windows: Known Folders from the shell, `\\?\` long paths, reparse points from file
//! attributes, and resetting a moved file's DACL to inherit from its new parent; for cleanup,
//! the drive letters and their volumes, raw reads of a volume, and running diskpart and schtasks.

use crate::cleanup::{Machine, Ran, Tool, Volume};
use crate::folders::Folders;
use crate::mapping::KnownFolder;
use std::ffi::OsString;
use std::fs::{File, FileTimes, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::fs::{FileTimesExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use windows_sys::core::{GUID, PWSTR};
use windows_sys::Win32::Security::Authorization::{SetNamedSecurityInfoW, SE_FILE_OBJECT};
use windows_sys::Win32::Security::{
    InitializeAcl, ACL, ACL_REVISION, DACL_SECURITY_INFORMATION, UNPROTECTED_DACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetLogicalDriveStringsW, GetVolumeInformationW, FILE_SHARE_READ, FILE_SHARE_WRITE,
};
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::UI::Shell::{
    SHGetKnownFolderPath, FOLDERID_Desktop, FOLDERID_Documents, FOLDERID_Downloads, FOLDERID_Favorites,
    FOLDERID_Music, FOLDERID_Pictures, FOLDERID_Profile, FOLDERID_Videos, KF_FLAG_CREATE,
};

const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

/// The current user's Known Folders, from `SHGetKnownFolderPath` (redirections honoured).
pub struct ShellFolders;

/// The current user's folders: the shell's Known Folders.
pub fn user_folders() -> io::Result<Box<dyn Folders>> {
    Ok(Box::new(ShellFolders))
}

fn folder_id(folder: KnownFolder) -> GUID {
    match folder {
        KnownFolder::Profile => FOLDERID_Profile,
        KnownFolder::Desktop => FOLDERID_Desktop,
        KnownFolder::Documents => FOLDERID_Documents,
        KnownFolder::Downloads => FOLDERID_Downloads,
        KnownFolder::Pictures => FOLDERID_Pictures,
        KnownFolder::Music => FOLDERID_Music,
        KnownFolder::Videos => FOLDERID_Videos,
        KnownFolder::Favorites => FOLDERID_Favorites,
    }
}

impl Folders for ShellFolders {
    fn resolve(&self, folder: KnownFolder) -> io::Result<PathBuf> {
        let id = folder_id(folder);
        let mut out: PWSTR = std::ptr::null_mut();
        // SAFETY: `id` is a valid GUID that outlives the call, a null token means the current
        // user, and `out` is a valid place for the returned pointer.
        let hr = unsafe { SHGetKnownFolderPath(&id, KF_FLAG_CREATE as u32, std::ptr::null_mut(), &mut out) };
        let path = if hr >= 0 && !out.is_null() {
            // SAFETY: on success `out` is a NUL-terminated wide string owned by us.
            let len = (0..).take_while(|&i| unsafe { *out.add(i) } != 0).count();
            // SAFETY: `out` points to `len` initialised u16s (counted above).
            let wide = unsafe { std::slice::from_raw_parts(out, len) };
            Some(PathBuf::from(OsString::from_wide(wide)))
        } else {
            None
        };
        // SAFETY: the shell allocated `out` with the COM allocator (or left it null, which
        // CoTaskMemFree accepts); it is not used after this.
        unsafe { CoTaskMemFree(out as *const _) };
        path.ok_or_else(|| io::Error::other(format!("SHGetKnownFolderPath({}) failed: HRESULT {hr:#010x}", folder_name(folder))))
    }
}

fn folder_name(folder: KnownFolder) -> &'static str {
    match folder {
        KnownFolder::Profile => "Profile",
        f => f.name(),
    }
}

/// Whether metadata from `symlink_metadata` is a reparse point (symlink, junction, …).
pub fn is_reparse_point(meta: &Metadata) -> bool {
    meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0
}

/// The path with the `\\?\` prefix, so paths longer than MAX_PATH work.
pub fn fs_path(path: &Path) -> PathBuf {
    let s = path.as_os_str().to_string_lossy();
    if s.starts_with(r"\\?\") || !path.is_absolute() {
        return path.to_path_buf();
    }
    let s = s.replace('/', "\\");
    match s.strip_prefix(r"\\") {
        Some(unc) => PathBuf::from(format!(r"\\?\UNC\{unc}")),
        None => PathBuf::from(format!(r"\\?\{s}")),
    }
}

/// Drops the moved file's own DACL so it inherits from its new parent folder.
pub fn inherit_acl(path: &Path) -> io::Result<()> {
    let wide: Vec<u16> = fs_path(path).as_os_str().encode_wide().chain(Some(0)).collect();
    // An empty ACL is just its header; Windows wants it DWORD-aligned (ACL alone is 2-aligned).
    let mut buf = [0u32; std::mem::size_of::<ACL>() / 4];
    let acl = buf.as_mut_ptr().cast::<ACL>();
    // SAFETY: `acl` points to `size_of::<ACL>()` writable, DWORD-aligned bytes: an empty ACL fits.
    let ok = unsafe { InitializeAcl(acl, std::mem::size_of::<ACL>() as u32, ACL_REVISION) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `wide` is NUL-terminated and outlives the call; `acl` (in `buf`, alive) is an
    // initialised empty ACL; owner, group and SACL are not being set, so null is allowed for them.
    let rc = unsafe {
        SetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | UNPROTECTED_DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            acl,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc as i32));
    }
    Ok(())
}

/// Adds the creation time where the manifest gives one.
pub fn with_created(times: FileTimes, created: Option<SystemTime>) -> FileTimes {
    match created {
        Some(c) => times.set_created(c),
        None => times,
    }
}

/// Opens a file or folder (not following a reparse point) so its times can be set.
pub fn open_for_times(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .access_mode(FILE_WRITE_ATTRIBUTES)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(fs_path(path))
}

/// The machine cleanup works on: this Windows.
pub struct WindowsMachine;

/// The machine cleanup works on.
pub fn machine() -> io::Result<Box<dyn Machine>> {
    Ok(Box::new(WindowsMachine))
}

/// A UTF-16 buffer up to its first NUL, as a string.
fn from_wide_z(buf: &[u16]) -> String {
    let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..len])
}

/// Label and filesystem name of the volume at `root` (`E:\`), or `None` when Windows cannot
/// tell (no media, a disconnected network drive).
fn volume_information(root: &[u16]) -> Option<(String, String)> {
    let root: Vec<u16> = root.iter().copied().chain(Some(0)).collect();
    let mut label = [0u16; 261];
    let mut fs = [0u16; 261];
    // SAFETY: `root` is NUL-terminated; `label` and `fs` are writable for the lengths passed;
    // serial number, maximum component length and flags are optional outputs, left null.
    let ok = unsafe {
        GetVolumeInformationW(
            root.as_ptr(),
            label.as_mut_ptr(),
            label.len() as u32,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            fs.as_mut_ptr(),
            fs.len() as u32,
        )
    };
    (ok != 0).then(|| (from_wide_z(&label), from_wide_z(&fs)))
}

fn system32(program: &str) -> PathBuf {
    let root = std::env::var_os("SystemRoot").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(r"C:\Windows"));
    root.join("System32").join(program)
}

impl Machine for WindowsMachine {
    fn volumes(&self) -> io::Result<Vec<Volume>> {
        // 26 letters as "X:\\\0" and the final NUL fit easily.
        let mut buf = [0u16; 512];
        // SAFETY: `buf` is writable for the length passed.
        let n = unsafe { GetLogicalDriveStringsW(buf.len() as u32, buf.as_mut_ptr()) } as usize;
        if n == 0 {
            return Err(io::Error::last_os_error());
        }
        if n > buf.len() {
            return Err(io::Error::other(format!("GetLogicalDriveStringsW needs {n} characters")));
        }
        let mut out = Vec::new();
        for root in buf[..n].split(|&c| c == 0).filter(|r| !r.is_empty()) {
            let Some(letter) = char::from_u32(u32::from(root[0])).filter(char::is_ascii_alphabetic) else { continue };
            if let Some((label, fs)) = volume_information(root) {
                out.push(Volume { letter: letter.to_ascii_uppercase(), label, fs });
            }
        }
        Ok(out)
    }

    fn read_head(&self, letter: char, len: usize) -> io::Result<Vec<u8>> {
        // Read-only, sharing read and write: the volume stays mounted and in use.
        let mut f = OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .open(format!(r"\\.\{letter}:"))?;
        let mut head = vec![0u8; len];
        f.read_exact(&mut head)?;
        Ok(head)
    }

    fn root(&self, letter: char) -> PathBuf {
        PathBuf::from(format!(r"{letter}:\"))
    }

    fn system_drive(&self) -> io::Result<char> {
        let v = std::env::var("SystemDrive").map_err(|e| io::Error::other(format!("%SystemDrive%: {e}")))?;
        v.chars().next().filter(char::is_ascii_alphabetic).ok_or_else(|| io::Error::other(format!("%SystemDrive% is {v:?}")))
    }

    fn run(&self, tool: Tool, args: &[std::ffi::OsString]) -> io::Result<Ran> {
        let program = system32(&format!("{}.exe", tool.name()));
        let out = std::process::Command::new(&program).args(args).output().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(Ran { code: out.status.code(), output })
    }
}
