//! A new Windows for the job to lay down, and an old Windows machine to migrate from, both
//! Windows-like NTFS volumes made with mkntfs and filled through ntfs-3g.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fixtures::{cleanup, gpt_image, mkfs_fat, run, sparse, windows_hives, workdir, NtfsMount};
use crate::migrate_fixtures::T0;
use std::process::Command;

const MIB: u64 = 1 << 20;

/// One file the old machine's profiles hold and the job must stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFile {
    pub user: &'static str,
    /// Relative to the profile folder, `/`-separated.
    pub path: &'static str,
    pub sha256: String,
    /// Modified time, seconds since 1970.
    pub mtime: i64,
}

fn write(mnt: &Path, rel: &str, content: &[u8], mtime: i64) {
    let p = mnt.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    let f = fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64)).unwrap();
}

fn sha256(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(b))
}

/// GPT, 256 MiB sparse: partition 1 is `C:` (NTFS "Windows", 96 MiB: `Windows\System32`,
/// `Users\Public`, `Users\Default`, the profiles of Carol and Dave, no registry hives), then
/// unallocated space for the store. Returns the disk and the profile files the built-in
/// Windows rules take and the job stages (a temp file and a cache are there too, which the
/// rules leave out, and a `desktop.ini`, which is not staged).
pub fn old_windows_disk(dir: &Path) -> (PathBuf, Vec<ProfileFile>) {
    let work = workdir(dir, "old_windows");
    let c = work.join("c.ntfs");
    sparse(&c, 96 * MIB);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", "Windows"]).arg(&c));
    let mnt = work.join("c.mnt");
    fs::create_dir_all(&mnt).unwrap();
    let m = NtfsMount::mount(&c, &mnt);
    let old = T0 - 86400 * 400;
    write(&mnt, "Windows/System32/ntoskrnl.exe", b"MZ old kernel", old);
    write(&mnt, "Users/Public/Documents/shared.txt", b"shared\r\n", old);
    write(&mnt, "Users/Default/NTUSER.DAT", b"regf default", old);
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let files: Vec<(&'static str, &'static str, Vec<u8>, i64)> = vec![
        ("Carol", "Documents/report.txt", b"report of Carol\r\n".to_vec(), T0 - 86400),
        ("Carol", "Documents/Taxes 2025/return.pdf", b"%PDF-1.7 return".to_vec(), T0 - 2 * 86400),
        ("Carol", "Desktop/todo.txt", b"buy milk\r\n".to_vec(), T0 - 3600),
        ("Carol", "Pictures/beach.jpg", photo, T0 - 30 * 86400),
        ("Carol", "NTUSER.DAT", b"regf Carol's hive".to_vec(), T0 - 60),
        ("Carol", "AppData/Roaming/Notepad++/config.xml", b"<NotepadPlus/>".to_vec(), T0 - 7200),
        ("Dave", "Documents/notes.txt", b"notes of Dave\r\n".to_vec(), T0 - 5 * 86400),
        ("Dave", "Music/song.mp3", vec![0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0x21], T0 - 9 * 86400),
        ("Dave", "NTUSER.DAT", b"regf Dave's hive".to_vec(), T0 - 120),
    ];
    let mut expected = Vec::new();
    for (user, path, content, mtime) in files {
        write(&mnt, &format!("Users/{user}/{path}"), &content, mtime);
        expected.push(ProfileFile { user, path, sha256: sha256(&content), mtime });
    }
    // Not staged: a folder's view settings.
    write(&mnt, "Users/Carol/Documents/desktop.ini", b"[.ShellClassInfo]\r\nLocalizedResourceName=@%SystemRoot%\\system32\\shell32.dll,-21770\r\n", T0);
    // Left out by the built-in rules.
    write(&mnt, "Users/Carol/AppData/Local/Temp/setup.tmp", b"temp", T0);
    write(&mnt, "Users/Dave/AppData/Local/Microsoft/Windows/INetCache/x.dat", b"cache", T0);
    m.unmount();
    let disk = dir.join("old_windows.img");
    gpt_image(&disk, 256 * MIB, &[(&c, "0700", "Basic data partition")]);
    cleanup(&work);
    (disk, expected)
}

/// What the reference Windows holds besides its system.
pub struct Reference<'a> {
    /// `sysprep /generalize /oobe` ran: `Sysprep_succeeded.tag` and the generalized image state.
    pub generalized: bool,
    /// An OEM's own `Windows\Setup\Scripts\SetupComplete.cmd`.
    pub setup_complete: Option<&'a str>,
}

/// The reference disk of a new Windows, GPT, 84 MiB: partition 1 an ESP (FAT,
/// `EFI\Microsoft\Boot\bootmgfw.efi`), partition 2 `C:` (NTFS "Windows", 48 MiB) with a
/// `Windows\System32` tree, a SOFTWARE hive built with hivexregedit (Windows 11 23H2's
/// version keys), `Users\Public` and `Users\Default`, and what `r` asks for.
pub fn windows_reference(dir: &Path, name: &str, r: &Reference<'_>) -> PathBuf {
    let work = workdir(dir, name);
    let (software, _sam) = windows_hives(&work, "win11-23h2");
    let esp = mkfs_fat(&work, "esp", 32 * MIB, "SYSTEM", &[], false);
    let boot = work.join("bootmgfw.efi");
    fs::write(&boot, b"MZ fixture boot manager").unwrap();
    run(Command::new("mmd").arg("-i").arg(&esp).args(["::/EFI", "::/EFI/Microsoft", "::/EFI/Microsoft/Boot"]));
    run(Command::new("mcopy").arg("-i").arg(&esp).arg(&boot).arg("::/EFI/Microsoft/Boot/bootmgfw.efi"));
    let c = work.join("c.ntfs");
    sparse(&c, 48 * MIB);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", "Windows"]).arg(&c));
    let mnt = work.join("c.mnt");
    fs::create_dir_all(&mnt).unwrap();
    let m = NtfsMount::mount(&c, &mnt);
    let t = T0 - 86400 * 10;
    write(&mnt, "Windows/System32/config/SOFTWARE", &fs::read(&software).unwrap(), t);
    write(&mnt, "Windows/System32/ntoskrnl.exe", b"MZ new kernel", t);
    write(&mnt, "Windows/System32/drivers/etc/hosts", b"127.0.0.1 localhost\r\n", t);
    write(&mnt, "Users/Public/Documents/desktop.ini", b"[.ShellClassInfo]\r\n", t);
    write(&mnt, "Users/Default/NTUSER.DAT", b"regf default", t);
    fs::create_dir_all(mnt.join("ProgramData/Microsoft")).unwrap();
    if r.generalized {
        write(&mnt, "Windows/System32/Sysprep/Sysprep_succeeded.tag", b"", t);
        write(&mnt, "Windows/Setup/State/State.ini", b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n", t);
    } else {
        write(&mnt, "Windows/Setup/State/State.ini", b"[State]\r\nImageState=IMAGE_STATE_COMPLETE\r\n", t);
    }
    if let Some(script) = r.setup_complete {
        write(&mnt, "Windows/Setup/Scripts/SetupComplete.cmd", script.as_bytes(), t);
    }
    m.unmount();
    let disk = dir.join(format!("{name}.img"));
    gpt_image(&disk, 84 * MIB, &[(&esp, "ef00", "EFI system partition"), (&c, "0700", "Basic data partition")]);
    cleanup(&work);
    disk
}
