//! Windows: Known Folders from the shell, `\\?\` long paths, reparse points from file
//! attributes, and resetting a moved file's DACL to inherit from its new parent.

use crate::folders::Folders;
use crate::mapping::KnownFolder;
use std::ffi::OsString;
use std::fs::{File, FileTimes, Metadata, OpenOptions};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::fs::{FileTimesExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use windows_sys::core::{GUID, PWSTR};
use windows_sys::Win32::Security::Authorization::{SetNamedSecurityInfoW, SE_FILE_OBJECT};
use windows_sys::Win32::Security::{
    InitializeAcl, ACL, ACL_REVISION, DACL_SECURITY_INFORMATION, UNPROTECTED_DACL_SECURITY_INFORMATION,
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
