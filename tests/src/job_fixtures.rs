//! Small disks and a small new-OS image for host tests of the job (`inplace run`, `inplace
//! preset check`), made in a few seconds with the real tools and nothing cached: an old Linux
//! machine, the same with its system encrypted (BitLocker, LUKS), and a Linux image whose ESP
//! alone is larger than a small disk can take beside the store.

use std::path::{Path, PathBuf};

use crate::fixtures::{bitlocker_volume, cleanup, debian_tree, gpt_image, luks2_volume, mkfs_ext4, mkfs_fat, workdir};

const MIB: u64 = 1 << 20;
/// The ESP of the new OS image: larger than what a 160 MiB disk has room for once its store is
/// carved.
pub const IMAGE_ESP: u64 = 128 * MIB;

/// An ESP (FAT32 labelled `label`, with the fallback loader) of `size` bytes in `work`.
fn esp(work: &Path, size: u64, label: &str) -> PathBuf {
    mkfs_fat(work, "esp", size, label, &["-F", "32"], true)
}

/// GPT, `size_mib` MiB (at least 128): 1 = ESP (FAT32, 64 MiB), 2 = ext4 root to the end
/// holding Debian 12 (os-release, passwd) with alice and bob and a note in each home, most of
/// it free (the store is carved from its free tail).
pub fn linux_disk(dir: &Path, name: &str, size_mib: u64) -> PathBuf {
    let w = workdir(dir, name);
    let root = mkfs_ext4(&w, "root", (size_mib - 66) * MIB, "oldroot", Some(&debian_tree(&w, &["alice", "bob"])));
    let disk = dir.join(format!("{name}.img"));
    gpt_image(&disk, size_mib * MIB, &[(&esp(&w, 64 * MIB, "ESP"), "ef00", "EFI System"), (&root, "8304", "root")]);
    cleanup(&w);
    disk
}

/// A Windows machine whose system partition is encrypted with BitLocker, 160 MiB GPT: 1 = ESP
/// (FAT32, 64 MiB), 2 = an NTFS volume whose boot sector carries BitLocker's `-FVE-FS-` id (as
/// BitLocker leaves it; nothing of Windows is readable).
pub fn bitlocker_disk(dir: &Path) -> PathBuf {
    let w = workdir(dir, "bitlocker");
    let c = bitlocker_volume(&w, "c", 64 * MIB, &["-L", "Windows"]);
    let disk = dir.join("bitlocker.img");
    gpt_image(&disk, 160 * MIB, &[(&esp(&w, 64 * MIB, "ESP"), "ef00", "EFI System"), (&c, "0700", "Basic data partition")]);
    cleanup(&w);
    disk
}

/// A Linux machine with its root in LUKS2, 160 MiB GPT: 1 = ESP (FAT32, 64 MiB), 2 = ext4
/// `/boot` (a kernel's file, no OS to be seen), 3 = the LUKS2 container.
pub fn luks_disk(dir: &Path) -> PathBuf {
    let w = workdir(dir, "luks");
    let tree = w.join("boot-tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("vmlinuz-6.1.0-fixture"), b"fixture kernel").unwrap();
    let boot = mkfs_ext4(&w, "boot", 16 * MIB, "boot", Some(&tree));
    let root = luks2_volume(&w, "root", 64 * MIB, "cryptroot");
    let disk = dir.join("luks.img");
    gpt_image(&disk, 160 * MIB, &[
        (&esp(&w, 64 * MIB, "ESP"), "ef00", "EFI System"),
        (&boot, "8300", "boot"),
        (&root, "8309", "root"),
    ]);
    cleanup(&w);
    disk
}

/// A new Linux OS as an inplace image (`inplace image create`) from a disk of 1 = ESP (FAT32,
/// [`IMAGE_ESP`], with the fallback loader), 2 = ext4 root (64 MiB: Debian 12, no users, with
/// a file where Debian has systemd's program, so a job on the host hands off to it; nothing of
/// it runs on the host). Returns the image and its digest.
pub fn new_os_image(dir: &Path) -> (PathBuf, String) {
    new_os_image_signed(dir, None)
}

/// [`new_os_image`], signed with the secret key `sign_key` when given.
pub fn new_os_image_signed(dir: &Path, sign_key: Option<&Path>) -> (PathBuf, String) {
    let w = workdir(dir, "new-os");
    let tree = debian_tree(&w, &[]);
    std::fs::create_dir_all(tree.join("usr/lib/systemd")).unwrap();
    std::fs::write(tree.join("usr/lib/systemd/systemd"), b"fixture systemd").unwrap();
    let root = mkfs_ext4(&w, "root", 64 * MIB, "newroot", Some(&tree));
    let disk = w.join("new-os.disk");
    gpt_image(&disk, IMAGE_ESP + 66 * MIB, &[(&esp(&w, IMAGE_ESP, "NEWESP"), "ef00", "EFI System"), (&root, "8304", "root")]);
    let image = dir.join("new-os.inplace");
    let digest = crate::e2e::image_create_signed(&disk, &image, sign_key);
    cleanup(&w);
    (image, digest)
}
