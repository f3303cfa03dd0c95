//! Disk image fixtures built with the real tools (sgdisk, sfdisk, fdisk, mkfs.*, mkntfs +
//! ntfs-3g), each with the inventory it must produce.
//!
//! Every builder writes a fresh sparse image into the given directory (nothing is cached) and
//! returns a [`Fixture`]: the image path and the [`Expected`] disk. Filesystems are made as
//! separate files and copied into place (like `dd conv=notrunc`, keeping holes). A missing
//! tool or a failing command panics with the command and its stderr.
//!
//! To compare an inventory from anywhere (the CLI, or the PE in QEMU where disk names,
//! models and serials differ), use [`Expected::check`]: it compares size, sector size, table,
//! partitions (numbers, bytes, types, names, fs, labels, OS) and findings, and ignores the
//! identity fields. [`Fixture::find_in`] picks the fixture's disk out of a whole inventory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inplace::inventory::{Disk, Finding, Inventory, Os, Partition, Severity};
use inplace::os::Account;

pub const MIB: u64 = 1024 * 1024;

pub const GUID_ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
pub const GUID_LINUX_FS: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
pub const GUID_MS_BASIC: &str = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";
pub const GUID_LINUX_SWAP: &str = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f";

/// A disk image and what `inplace inspect` must say about it.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub name: &'static str,
    pub path: PathBuf,
    pub expected: Expected,
}

/// The expected inventory entry of one disk, without its identity (name, model, serial, WWN,
/// transport, removable, physical sector size), which depend on how the disk is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub size_bytes: u64,
    pub logical_sector_size: u32,
    pub table: Option<String>,
    /// Exactly the partitions, in order, field for field.
    pub partitions: Vec<Partition>,
    /// Exactly these findings on the disk, in order.
    pub findings: Vec<ExpectedFinding>,
}

/// A finding matched by severity, where (the disk itself or one partition) and a piece of its
/// message.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedFinding {
    pub severity: Severity,
    /// `None`: about the disk; `Some(n)`: subject ends with `/partition n`.
    pub partition: Option<u32>,
    pub contains: &'static str,
}

impl ExpectedFinding {
    fn matches(&self, f: &Finding, disk_name: &str) -> bool {
        let subject_ok = match self.partition {
            None => f.subject == disk_name,
            Some(n) => f.subject.ends_with(&format!("/partition {n}")),
        };
        f.severity == self.severity && subject_ok && f.message.contains(self.contains)
    }
}

impl Expected {
    /// Compares `disk` with what is expected; the error lists every difference.
    pub fn check(&self, disk: &Disk) -> Result<(), String> {
        let mut diffs = Vec::new();
        if disk.size_bytes != self.size_bytes {
            diffs.push(format!("size_bytes: got {}, want {}", disk.size_bytes, self.size_bytes));
        }
        if disk.logical_sector_size != self.logical_sector_size {
            diffs.push(format!(
                "logical_sector_size: got {}, want {}",
                disk.logical_sector_size, self.logical_sector_size
            ));
        }
        if disk.table != self.table {
            diffs.push(format!("table: got {:?}, want {:?}", disk.table, self.table));
        }
        if disk.partitions.len() != self.partitions.len() {
            diffs.push(format!(
                "partition count: got {}, want {}",
                disk.partitions.len(),
                self.partitions.len()
            ));
        }
        for (got, want) in disk.partitions.iter().zip(&self.partitions) {
            if got != want {
                diffs.push(format!("partition {}:\n  got  {got:?}\n  want {want:?}", want.number));
            }
        }
        let findings_ok = disk.findings.len() == self.findings.len()
            && disk.findings.iter().zip(&self.findings).all(|(f, e)| e.matches(f, &disk.name));
        if !findings_ok {
            diffs.push(format!("findings:\n  got  {:#?}\n  want {:#?}", disk.findings, self.findings));
        }
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(format!("disk {} differs from the fixture:\n{}", disk.name, diffs.join("\n")))
        }
    }
}

impl Fixture {
    /// The disk of `inventory` that is this fixture: same size and same partition starts.
    pub fn find_in<'a>(&self, inventory: &'a Inventory) -> Option<&'a Disk> {
        let starts = |ps: &[Partition]| ps.iter().map(|p| (p.number, p.start_bytes)).collect::<Vec<_>>();
        inventory.disks.iter().find(|d| {
            d.size_bytes == self.expected.size_bytes && starts(&d.partitions) == starts(&self.expected.partitions)
        })
    }
}

// ---- the fixtures --------------------------------------------------------------------------

/// GPT, 256 MiB: an ESP (FAT32), a Linux root (ext4: Debian 12, users alice and bob) and a
/// Windows-like NTFS (System32, profiles Carol and Dave besides Public/Default/links).
pub fn gpt_multi_os(dir: &Path) -> Fixture {
    let work = workdir(dir, "gpt_multi_os");
    let esp = mkfs_fat(&work, "esp", 64 * MIB, "ESP", &["-F", "32"], true);
    let root = mkfs_ext4(&work, "root", 96 * MIB, "rootfs", Some(&debian_tree(&work, &["alice", "bob"])));
    let win = mkntfs_windows(&work, "win", 64 * MIB, "Windows", &["Carol", "Dave"], false);

    let image = dir.join("gpt_multi_os.img");
    sparse(&image, 256 * MIB);
    let parts = [
        GptPart { start: MIB, size: 64 * MIB, code: "ef00", name: "EFI System" },
        GptPart { start: 65 * MIB, size: 96 * MIB, code: "8300", name: "linux-root" },
        GptPart { start: 161 * MIB, size: 64 * MIB, code: "0700", name: "windows" },
    ];
    sgdisk(&image, &parts);
    place(&image, MIB, &esp);
    place(&image, 65 * MIB, &root);
    place(&image, 161 * MIB, &win);
    cleanup(&work);

    Fixture {
        name: "gpt_multi_os",
        path: image,
        expected: Expected {
            size_bytes: 256 * MIB,
            logical_sector_size: 512,
            table: Some("gpt".into()),
            partitions: vec![
                part(1, MIB, 64 * MIB, GUID_ESP, Some("EFI System"), Some("vfat"), Some("ESP"), None),
                part(2, 65 * MIB, 96 * MIB, GUID_LINUX_FS, Some("linux-root"), Some("ext4"), Some("rootfs"),
                    Some(linux("Debian GNU/Linux", Some("12"), &["alice", "bob"]))),
                part(3, 161 * MIB, 64 * MIB, GUID_MS_BASIC, Some("windows"), Some("ntfs"), Some("Windows"),
                    Some(windows(&["Carol", "Dave"]))),
            ],
            findings: vec![],
        },
    }
}

/// MBR, 4.5 GiB sparse: ext4 root (Ubuntu 22.04, user erin), swap, and an extended partition
/// with two logical partitions (ext4 "home"; FAT "LOGICAL6" starting past 4 GiB).
pub fn mbr_extended(dir: &Path) -> Fixture {
    let work = workdir(dir, "mbr_extended");
    let root = mkfs_ext4(&work, "root", 96 * MIB, "mbrroot", Some(&linux_tree(&work, "Ubuntu", "22.04", &["erin"])));
    let swap = mkswap(&work, "swap", 16 * MIB, "swap0");
    let home = mkfs_ext4(&work, "home", 32 * MIB, "home", None);
    let data = mkfs_fat(&work, "data", 32 * MIB, "LOGICAL6", &[], false);

    let image = dir.join("mbr_extended.img");
    let size = 4608 * MIB;
    sparse(&image, size);
    let s = |mib: u64| mib * MIB / 512;
    let script = format!(
        "label: dos\nunit: sectors\n\n\
         start={}, size={}, type=83\n\
         start={}, size={}, type=82\n\
         start={}, size={}, type=5\n\
         start={}, size={}, type=83\n\
         start={}, size={}, type=c\n",
        s(1), s(96), s(97), s(16), s(113), s(4494), s(114), s(32), s(4200), s(32)
    );
    run_input(Command::new("sfdisk").arg("--no-reread").arg("--no-tell-kernel").arg(&image), &script);
    // The tool must agree with what we asked for.
    let dump = run(Command::new("sfdisk").arg("--dump").arg(&image));
    for want in ["start=        2048, size=      196608, type=83", "start=     8601600, size=       65536, type=c"] {
        assert!(dump.contains(want), "sfdisk laid out the MBR differently:\n{dump}");
    }
    place(&image, MIB, &root);
    place(&image, 97 * MIB, &swap);
    place(&image, 114 * MIB, &home);
    place(&image, 4200 * MIB, &data);
    cleanup(&work);

    Fixture {
        name: "mbr_extended",
        path: image,
        expected: Expected {
            size_bytes: size,
            logical_sector_size: 512,
            table: Some("mbr".into()),
            partitions: vec![
                part(1, MIB, 96 * MIB, "0x83", None, Some("ext4"), Some("mbrroot"), Some(linux("Ubuntu", Some("22.04"), &["erin"]))),
                part(2, 97 * MIB, 16 * MIB, "0x82", None, Some("swap"), Some("swap0"), None),
                part(3, 113 * MIB, 4494 * MIB, "0x05", None, None, None, None),
                part(5, 114 * MIB, 32 * MIB, "0x83", None, Some("ext4"), Some("home"), None),
                part(6, 4200 * MIB, 32 * MIB, "0x0c", None, Some("vfat"), Some("LOGICAL6"), None),
            ],
            findings: vec![],
        },
    }
}

/// GPT on a disk with 4096-byte logical sectors (made with `fdisk -b 4096`), 64 MiB: a FAT
/// with 4 KiB sectors and an ext4 Linux root (Fedora 40, user kim).
pub fn gpt_4k(dir: &Path) -> Fixture {
    let work = workdir(dir, "gpt_4k");
    let esp = mkfs_fat(&work, "esp", 32 * MIB, "ESP4K", &["-S", "4096"], false);
    let root = mkfs_ext4(&work, "root", 24 * MIB, "root4k", Some(&linux_tree(&work, "Fedora Linux", "40", &["kim"])));

    let image = dir.join("gpt_4k.img");
    sparse(&image, 64 * MIB);
    // Sectors are 4 KiB: 256 = 1 MiB.
    let input = "g\nn\n1\n256\n8447\nn\n2\n8448\n14591\nt\n1\nuefi\nw\n";
    run_input(Command::new("fdisk").args(["-b", "4096"]).arg(&image), input);
    let mut sig = [0u8; 8];
    read_at(&image, 4096, &mut sig);
    assert_eq!(&sig, b"EFI PART", "fdisk -b 4096 did not put the GPT header at byte 4096");
    place(&image, MIB, &esp);
    place(&image, 33 * MIB, &root);
    cleanup(&work);

    Fixture {
        name: "gpt_4k",
        path: image,
        expected: Expected {
            size_bytes: 64 * MIB,
            logical_sector_size: 4096,
            table: Some("gpt".into()),
            partitions: vec![
                part(1, MIB, 32 * MIB, GUID_ESP, None, Some("vfat"), Some("ESP4K"), None),
                part(2, 33 * MIB, 24 * MIB, GUID_LINUX_FS, None, Some("ext4"), Some("root4k"),
                    Some(linux("Fedora Linux", Some("40"), &["kim"]))),
            ],
            findings: vec![],
        },
    }
}

/// 64 MiB of zeros.
pub fn blank(dir: &Path) -> Fixture {
    let image = dir.join("blank.img");
    sparse(&image, 64 * MIB);
    Fixture {
        name: "blank",
        path: image,
        expected: Expected { size_bytes: 64 * MIB, logical_sector_size: 512, table: None, partitions: vec![], findings: vec![] },
    }
}

/// An empty file.
pub fn zero_size(dir: &Path) -> Fixture {
    let image = dir.join("zero_size.img");
    File::create(&image).unwrap_or_else(|e| panic!("creating {}: {e}", image.display()));
    Fixture {
        name: "zero_size",
        path: image,
        expected: Expected {
            size_bytes: 0,
            logical_sector_size: 512,
            table: None,
            partitions: vec![],
            findings: vec![ExpectedFinding { severity: Severity::Error, partition: None, contains: "size of 0 bytes" }],
        },
    }
}

/// A 32 MiB GPT image cut to 20 MiB: the backup header and most of partition 2 are gone.
pub fn gpt_truncated(dir: &Path) -> Fixture {
    let work = workdir(dir, "gpt_truncated");
    let early = mkfs_ext4(&work, "early", 8 * MIB, "early", None);
    let image = dir.join("gpt_truncated.img");
    sparse(&image, 32 * MIB);
    sgdisk(&image, &[
        GptPart { start: MIB, size: 8 * MIB, code: "8300", name: "early" },
        GptPart { start: 9 * MIB, size: 20 * MIB, code: "8300", name: "late" },
    ]);
    place(&image, MIB, &early);
    OpenOptions::new().write(true).open(&image).and_then(|f| f.set_len(20 * MIB)).expect("truncating the image");
    cleanup(&work);
    Fixture {
        name: "gpt_truncated",
        path: image,
        expected: Expected {
            size_bytes: 20 * MIB,
            logical_sector_size: 512,
            table: Some("gpt".into()),
            partitions: vec![
                part(1, MIB, 8 * MIB, GUID_LINUX_FS, Some("early"), Some("ext4"), Some("early"), None),
                part(2, 9 * MIB, 20 * MIB, GUID_LINUX_FS, Some("late"), None, None, None),
            ],
            findings: vec![
                ExpectedFinding {
                    severity: Severity::Warning,
                    partition: None,
                    contains: "the backup GPT header (LBA 65535, byte 33553920) lies beyond the end of the disk (20971520 bytes)",
                },
                ExpectedFinding {
                    severity: Severity::Error,
                    partition: Some(2),
                    contains: "partition 2 (bytes 9437184–30408704) runs past the end of the disk",
                },
            ],
        },
    }
}

/// A GPT whose primary header is damaged (one byte flipped); the backup is intact.
pub fn gpt_corrupt_primary(dir: &Path) -> Fixture {
    let work = workdir(dir, "gpt_corrupt_primary");
    let data = mkfs_fat(&work, "data", 8 * MIB, "DATA", &[], false);
    let image = dir.join("gpt_corrupt_primary.img");
    sparse(&image, 16 * MIB);
    sgdisk(&image, &[GptPart { start: MIB, size: 8 * MIB, code: "0700", name: "data" }]);
    place(&image, MIB, &data);
    flip_byte(&image, 512 + 40);
    cleanup(&work);
    Fixture {
        name: "gpt_corrupt_primary",
        path: image,
        expected: Expected {
            size_bytes: 16 * MIB,
            logical_sector_size: 512,
            table: Some("gpt".into()),
            partitions: vec![part(1, MIB, 8 * MIB, GUID_MS_BASIC, Some("data"), Some("vfat"), Some("DATA"), None)],
            findings: vec![ExpectedFinding {
                severity: Severity::Warning,
                partition: None,
                contains: "primary GPT header is corrupt (CRC mismatch); partitions read from the backup at LBA 32767; repair with gdisk",
            }],
        },
    }
}

/// An MBR whose second entry was edited to start inside the first.
pub fn mbr_overlap(dir: &Path) -> Fixture {
    let image = dir.join("mbr_overlap.img");
    sparse(&image, 32 * MIB);
    run_input(
        Command::new("sfdisk").arg("--no-reread").arg("--no-tell-kernel").arg(&image),
        "label: dos\nunit: sectors\n\nstart=2048, size=16384, type=83\nstart=18432, size=16384, type=83\n",
    );
    // Entry 2's start LBA (bytes 8..12 of the 16-byte entry at 446 + 16) → sector 10240.
    write_at(&image, 446 + 16 + 8, &10240u32.to_le_bytes());
    Fixture {
        name: "mbr_overlap",
        path: image,
        expected: Expected {
            size_bytes: 32 * MIB,
            logical_sector_size: 512,
            table: Some("mbr".into()),
            partitions: vec![
                part(1, MIB, 8 * MIB, "0x83", None, None, None, None),
                part(2, 5 * MIB, 8 * MIB, "0x83", None, None, None, None),
            ],
            findings: vec![ExpectedFinding {
                severity: Severity::Error,
                partition: Some(2),
                contains: "partitions 1 (bytes 1048576–9437184) and 2 (bytes 5242880–13631488) overlap",
            }],
        },
    }
}

/// Filesystems whose signature is intact but whose structures are garbage: an ext4 with an
/// impossible block size, an NTFS whose `$MFT` points past the volume.
pub fn garbage_superblock(dir: &Path) -> Fixture {
    let work = workdir(dir, "garbage_superblock");
    let ext = mkfs_ext4(&work, "ext", 16 * MIB, "junk", None);
    write_at(&ext, 1024 + 24, &40u32.to_le_bytes()); // s_log_block_size
    let ntfs = work.join("ntfs.img");
    sparse(&ntfs, 16 * MIB);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", "broken"]).arg(&ntfs));
    write_at(&ntfs, 0x30, &(1u64 << 40).to_le_bytes()); // $MFT cluster number
    let image = dir.join("garbage_superblock.img");
    sparse(&image, 48 * MIB);
    sgdisk(&image, &[
        GptPart { start: MIB, size: 16 * MIB, code: "8300", name: "bad-ext4" },
        GptPart { start: 17 * MIB, size: 16 * MIB, code: "0700", name: "bad-ntfs" },
    ]);
    place(&image, MIB, &ext);
    place(&image, 17 * MIB, &ntfs);
    cleanup(&work);
    Fixture {
        name: "garbage_superblock",
        path: image,
        expected: Expected {
            size_bytes: 48 * MIB,
            logical_sector_size: 512,
            table: Some("gpt".into()),
            partitions: vec![
                part(1, MIB, 16 * MIB, GUID_LINUX_FS, Some("bad-ext4"), Some("ext4"), Some("junk"), None),
                part(2, 17 * MIB, 16 * MIB, GUID_MS_BASIC, Some("bad-ntfs"), Some("ntfs"), None, None),
            ],
            findings: vec![
                ExpectedFinding {
                    severity: Severity::Error,
                    partition: Some(1),
                    contains: "the ext4 signature is present but the filesystem cannot be read",
                },
                ExpectedFinding {
                    severity: Severity::Error,
                    partition: Some(2),
                    contains: "the ntfs signature is present but the filesystem cannot be read",
                },
            ],
        },
    }
}

/// One partition per other kind of content, made by its real tool: swap, btrfs, xfs, exFAT,
/// LUKS2, a BitLocker boot sector (an NTFS one with the `-FVE-FS-` id) and a hibernated
/// Windows NTFS. 528 MiB sparse (xfs needs 300 MiB).
pub fn signatures(dir: &Path) -> Fixture {
    let work = workdir(dir, "signatures");
    let swap = mkswap(&work, "swap", 8 * MIB, "swap0");
    let btrfs = tool_fs(&work, "btrfs", 128 * MIB, &["mkfs.btrfs", "-q", "-L", "bdata"]);
    let xfs = tool_fs(&work, "xfs", 300 * MIB, &["mkfs.xfs", "-q", "-f", "-L", "xdata"]);
    let exfat = tool_fs(&work, "exfat", 16 * MIB, &["mkfs.exfat", "-L", "edata"]);
    let luks = luks2_volume(&work, "luks", 20 * MIB, "cryptdata");
    let bitlocker = bitlocker_volume(&work, "bitlocker", 16 * MIB, &[]);
    let hib = mkntfs_windows(&work, "hib", 32 * MIB, "Hibernated", &["Erin"], true);

    let image = dir.join("signatures.img");
    let size = 528 * MIB;
    let starts = gpt_image(&image, size, &[
        (&swap, "8200", "swap"),
        (&btrfs, "8300", "btrfs"),
        (&xfs, "8300", "xfs"),
        (&exfat, "0700", "exfat"),
        (&luks, "8309", "luks"),
        (&bitlocker, "0700", "bitlocker"),
        (&hib, "0700", "hibernated"),
    ]);
    cleanup(&work);

    let s = |i: usize| starts[i];
    Fixture {
        name: "signatures",
        path: image,
        expected: Expected {
            size_bytes: size,
            logical_sector_size: 512,
            table: Some("gpt".into()),
            partitions: vec![
                part(1, s(0), 8 * MIB, GUID_LINUX_SWAP, Some("swap"), Some("swap"), Some("swap0"), None),
                part(2, s(1), 128 * MIB, GUID_LINUX_FS, Some("btrfs"), Some("btrfs"), Some("bdata"), None),
                part(3, s(2), 300 * MIB, GUID_LINUX_FS, Some("xfs"), Some("xfs"), Some("xdata"), None),
                part(4, s(3), 16 * MIB, GUID_MS_BASIC, Some("exfat"), Some("exfat"), Some("edata"), None),
                part(5, s(4), 20 * MIB, "ca7d7ccb-63ed-4c53-861c-1742536059cc", Some("luks"), Some("luks"), Some("cryptdata"), None),
                part(6, s(5), 16 * MIB, GUID_MS_BASIC, Some("bitlocker"), Some("bitlocker"), None, None),
                part(7, s(6), 32 * MIB, GUID_MS_BASIC, Some("hibernated"), Some("ntfs"), Some("Hibernated"), Some(windows(&["Erin"]))),
            ],
            findings: vec![
                ExpectedFinding { severity: Severity::Warning, partition: Some(5), contains: "LUKS-encrypted volume" },
                ExpectedFinding { severity: Severity::Warning, partition: Some(6), contains: "BitLocker-encrypted volume" },
                ExpectedFinding { severity: Severity::Warning, partition: Some(7), contains: "Windows is hibernated" },
            ],
        },
    }
}

// ---- expected-value helpers ----------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn part(
    number: u32,
    start: u64,
    size: u64,
    part_type: &str,
    name: Option<&str>,
    fs: Option<&str>,
    label: Option<&str>,
    os: Option<Os>,
) -> Partition {
    Partition {
        number,
        start_bytes: start,
        size_bytes: size,
        part_type: part_type.into(),
        name: name.map(Into::into),
        fs: fs.map(Into::into),
        label: label.map(Into::into),
        os,
    }
}

/// The OS [`linux_tree`] makes: os-release's names, passwd's people from uid 1000 on.
fn linux(name: &str, version: Option<&str>, users: &[&str]) -> Os {
    Os {
        family: "linux".into(),
        name: name.into(),
        version: version.map(Into::into),
        pretty_name: Some(format!("{name} {}", version.unwrap_or_default())),
        users: users.iter().map(|u| u.to_string()).collect(),
        accounts: users
            .iter()
            .enumerate()
            .map(|(i, u)| Account {
                name: u.to_string(),
                uid: Some(1000 + i as u32),
                profile: Some(format!("/home/{u}")),
                kind: "local".into(),
                ..Account::default()
            })
            .collect(),
        users_from: Some("passwd".into()),
        ..Os::default()
    }
}

/// A Windows volume without registry hives: its users are the folders under `\Users`.
fn windows(users: &[&str]) -> Os {
    Os {
        family: "windows".into(),
        name: "Windows".into(),
        users: users.iter().map(|u| u.to_string()).collect(),
        users_from: Some("folders".into()),
        ..Os::default()
    }
}

// ---- building blocks -----------------------------------------------------------------------

/// An empty `NAME.work` folder in `dir` for a builder's pieces ([`cleanup`] removes it).
pub fn workdir(dir: &Path, name: &str) -> PathBuf {
    let w = dir.join(format!("{name}.work"));
    let _ = fs::remove_dir_all(&w);
    fs::create_dir_all(&w).unwrap_or_else(|e| panic!("creating {}: {e}", w.display()));
    w
}

/// Removes a [`workdir`].
pub fn cleanup(work: &Path) {
    let _ = fs::remove_dir_all(work);
}

/// A sparse file of `size` bytes.
pub fn sparse(path: &Path, size: u64) {
    let f = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    f.set_len(size).unwrap_or_else(|e| panic!("sizing {}: {e}", path.display()));
}

fn hint(program: &str) -> &'static str {
    match program {
        "sgdisk" => "gdisk",
        "sfdisk" | "fdisk" | "mkswap" => "fdisk (util-linux)",
        "mkfs.ext4" => "e2fsprogs",
        "mkfs.fat" | "mcopy" | "mmd" | "mlabel" => "dosfstools / mtools",
        "mkntfs" | "ntfs-3g" => "ntfs-3g",
        "mkfs.btrfs" => "btrfs-progs",
        "mkfs.xfs" => "xfsprogs",
        "mkfs.exfat" => "exfatprogs",
        "hivexregedit" => "libwin-hivex-perl",
        "cryptsetup" => "cryptsetup-bin",
        _ => "the package that provides it",
    }
}

/// Runs a command; panics with its stderr if it cannot start or fails.
pub fn run(cmd: &mut Command) -> String {
    run_input(cmd, "")
}

/// Runs a command with `input` on stdin.
pub fn run_input(cmd: &mut Command, input: &str) -> String {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; install {} (apt-get install)", hint(&program)));
    if let Some(mut stdin) = child.stdin.take() {
        // A tool may exit before reading everything; its status says whether that was fine.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("waiting for {program}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stderr\n{}\n--- stdout\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct GptPart<'a> {
    start: u64,
    size: u64,
    code: &'a str,
    name: &'a str,
}

/// A fresh GPT with the given partitions (byte offsets, 512-byte sectors).
fn sgdisk(image: &Path, parts: &[GptPart]) {
    let mut cmd = Command::new("sgdisk");
    cmd.arg("-o");
    for (i, p) in parts.iter().enumerate() {
        let n = i + 1;
        let first = p.start / 512;
        let last = first + p.size / 512 - 1;
        cmd.arg(format!("-n{n}:{first}:{last}")).arg(format!("-t{n}:{}", p.code)).arg(format!("-c{n}:{}", p.name));
    }
    run(cmd.arg(image));
}

/// A fresh sparse disk image of `size` bytes with a GPT holding `parts` one after the other
/// from byte 1 MiB, each as large as its filesystem image (whole MiBs) and copied into place:
/// (filesystem image, sgdisk type code, GPT name). Returns each partition's first byte.
pub fn gpt_image(image: &Path, size: u64, parts: &[(&Path, &str, &str)]) -> Vec<u64> {
    sparse(image, size);
    let mut table = Vec::new();
    let mut start = MIB;
    for (file, code, name) in parts {
        let len = fs::metadata(file).unwrap_or_else(|e| panic!("stat {}: {e}", file.display())).len();
        assert!(len % MIB == 0, "{} is not a whole number of MiB", file.display());
        table.push(GptPart { start, size: len, code, name });
        start += len;
    }
    sgdisk(image, &table);
    for (p, (file, _, _)) in table.iter().zip(parts) {
        place(image, p.start, file);
    }
    table.iter().map(|p| p.start).collect()
}

/// Copies `src` into `image` at `offset` without truncating, skipping holes and zero blocks so
/// the image stays sparse (and a large sparse filesystem image costs only its data).
pub fn place(image: &Path, offset: u64, src: &Path) {
    use rustix::fs::{seek, SeekFrom as RSeek};
    let mut from = File::open(src).unwrap_or_else(|e| panic!("opening {}: {e}", src.display()));
    let len = from.metadata().map(|m| m.len()).unwrap_or_else(|e| panic!("stat {}: {e}", src.display()));
    let mut to = OpenOptions::new().write(true).open(image).unwrap_or_else(|e| panic!("opening {}: {e}", image.display()));
    let mut buf = vec![0u8; MIB as usize];
    let mut pos = 0u64;
    while pos < len {
        // ENXIO: no data after `pos`.
        let Ok(data) = seek(&from, RSeek::Data(pos)) else { break };
        let hole = seek(&from, RSeek::Hole(data)).unwrap_or(len).min(len);
        from.seek(SeekFrom::Start(data)).unwrap_or_else(|e| panic!("seeking {}: {e}", src.display()));
        let mut at = data;
        while at < hole {
            let want = (hole - at).min(MIB) as usize;
            let n = read_full(&mut from, &mut buf[..want]).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
            if n == 0 {
                break;
            }
            if buf[..n].iter().any(|b| *b != 0) {
                to.seek(SeekFrom::Start(offset + at)).and_then(|_| to.write_all(&buf[..n]))
                    .unwrap_or_else(|e| panic!("writing {} at {}: {e}", image.display(), offset + at));
            }
            at += n as u64;
        }
        pos = hole;
    }
    to.sync_all().ok();
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    f.seek(SeekFrom::Start(offset)).and_then(|_| f.write_all(bytes)).unwrap_or_else(|e| panic!("patching {}: {e}", path.display()));
}

fn read_at(path: &Path, offset: u64, buf: &mut [u8]) {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    f.seek(SeekFrom::Start(offset)).and_then(|_| f.read_exact(buf)).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
}

fn flip_byte(path: &Path, offset: u64) {
    let mut b = [0u8; 1];
    read_at(path, offset, &mut b);
    write_at(path, offset, &[b[0] ^ 0xff]);
}

/// A root tree for `mkfs.ext4 -d`: os-release (linked from /etc as on Debian), passwd with
/// system users around the people, their homes.
fn linux_tree(work: &Path, name: &str, version: &str, users: &[&str]) -> PathBuf {
    let t = work.join(format!("tree-{}", name.replace(' ', "_")));
    let w = |rel: &str, content: &str| {
        let p = t.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    };
    w("usr/lib/os-release", &format!("PRETTY_NAME=\"{name} {version}\"\nNAME=\"{name}\"\nVERSION_ID=\"{version}\"\nID=fixture\n"));
    fs::create_dir_all(t.join("etc")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", t.join("etc/os-release")).expect("symlink in the tree");
    let mut passwd = String::from(
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n",
    );
    for (i, u) in users.iter().enumerate() {
        passwd.push_str(&format!("{u}:x:{}:{}:{u}:/home/{u}:/bin/bash\n", 1000 + i, 1000 + i));
        w(&format!("home/{u}/Documents/notes.txt"), &format!("notes of {u}\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    w("etc/passwd", &passwd);
    w("etc/fstab", "# fixture\n");
    t
}

/// [`linux_tree`] of Debian GNU/Linux 12 with `users`.
pub fn debian_tree(work: &Path, users: &[&str]) -> PathBuf {
    linux_tree(work, "Debian GNU/Linux", "12", users)
}

pub fn mkfs_ext4(work: &Path, name: &str, size: u64, label: &str, tree: Option<&Path>) -> PathBuf {
    mkfs_ext4_with(work, name, size, label, tree, &[])
}

/// [`mkfs_ext4`] with more `mkfs.ext4` arguments (e.g. `-U UUID`).
pub fn mkfs_ext4_with(work: &Path, name: &str, size: u64, label: &str, tree: Option<&Path>, extra: &[&str]) -> PathBuf {
    let img = work.join(format!("{name}.ext4"));
    sparse(&img, size);
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-b", "4096", "-L", label]).args(extra);
    if let Some(tree) = tree {
        cmd.arg("-d").arg(tree);
    }
    run(cmd.arg(&img));
    img
}

/// A FAT filesystem; with `esp`, an `EFI/BOOT/BOOTX64.EFI` is copied in with mtools.
pub fn mkfs_fat(work: &Path, name: &str, size: u64, label: &str, args: &[&str], esp: bool) -> PathBuf {
    let img = work.join(format!("{name}.fat"));
    sparse(&img, size);
    run(Command::new("mkfs.fat").args(args).args(["-n", label]).arg(&img));
    if esp {
        let loader = work.join("BOOTX64.EFI");
        fs::write(&loader, b"MZ fixture loader").unwrap();
        run(Command::new("mmd").arg("-i").arg(&img).args(["::/EFI", "::/EFI/BOOT"]));
        run(Command::new("mcopy").arg("-i").arg(&img).arg(&loader).arg("::/EFI/BOOT/BOOTX64.EFI"));
    }
    img
}

fn mkswap(work: &Path, name: &str, size: u64, label: &str) -> PathBuf {
    let img = work.join(format!("{name}.swap"));
    sparse(&img, size);
    run(Command::new("mkswap").args(["-L", label]).arg(&img));
    img
}

/// A LUKS2 container of `size` bytes labelled `label` (`cryptsetup luksFormat` on the file, a
/// fixed passphrase, a cheap key derivation; no loop device).
pub fn luks2_volume(work: &Path, name: &str, size: u64, label: &str) -> PathBuf {
    let img = work.join(format!("{name}.luks"));
    sparse(&img, size);
    run_input(
        Command::new("cryptsetup")
            .args(["luksFormat", "--batch-mode", "--type", "luks2", "--label", label])
            .args(["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file=-"])
            .arg(&img),
        "fixture-passphrase",
    );
    img
}

/// A volume as BitLocker leaves it: an NTFS (mkntfs, with `mkntfs_args`) whose boot sector
/// carries BitLocker's `-FVE-FS-` id; nothing in it is readable.
pub fn bitlocker_volume(work: &Path, name: &str, size: u64, mkntfs_args: &[&str]) -> PathBuf {
    let img = work.join(format!("{name}.bitlocker"));
    sparse(&img, size);
    run(Command::new("mkntfs").args(["-F", "-Q"]).args(mkntfs_args).arg(&img));
    write_at(&img, 3, b"-FVE-FS-");
    img
}

/// A filesystem made by `argv` on a fresh sparse file (appended as the last argument).
fn tool_fs(work: &Path, name: &str, size: u64, argv: &[&str]) -> PathBuf {
    let img = work.join(format!("{name}.img"));
    sparse(&img, size);
    run(Command::new(argv[0]).args(&argv[1..]).arg(&img));
    img
}

/// An NTFS made by mkntfs and populated through an ntfs-3g FUSE mount like a Windows system
/// volume without registry hives: `Windows\System32`, `Users\<each user>` plus `Public`, `Default`, the `All Users` /
/// `Default User` links and `desktop.ini`; with `hibernated`, a `hiberfil.sys` whose header is
/// `HIBR`.
fn mkntfs_windows(work: &Path, name: &str, size: u64, label: &str, users: &[&str], hibernated: bool) -> PathBuf {
    let img = work.join(format!("{name}.ntfs"));
    sparse(&img, size);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", label]).arg(&img));
    let mnt = work.join(format!("{name}.mnt"));
    fs::create_dir_all(&mnt).unwrap();
    let m = NtfsMount::mount(&img, &mnt);
    let w = |rel: &str, content: &[u8]| {
        let p = mnt.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap_or_else(|e| panic!("mkdir for {}: {e}", p.display()));
        fs::write(&p, content).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    };
    w("Windows/System32/ntoskrnl.exe", b"MZ fixture kernel");
    for u in users {
        w(&format!("Users/{u}/Documents/report.txt"), format!("report of {u}\r\n").as_bytes());
        w(&format!("Users/{u}/NTUSER.DAT"), b"regf fixture");
    }
    w("Users/Public/Documents/shared.txt", b"shared\r\n");
    w("Users/Default/NTUSER.DAT", b"regf default");
    w("Users/desktop.ini", b"[.ShellClassInfo]\r\n");
    std::os::unix::fs::symlink("../ProgramData", mnt.join("Users/All Users")).expect("ln -s on ntfs-3g");
    std::os::unix::fs::symlink("Default", mnt.join("Users/Default User")).expect("ln -s on ntfs-3g");
    fs::create_dir_all(mnt.join("ProgramData")).unwrap();
    if hibernated {
        let mut hib = b"HIBR".to_vec();
        hib.resize(64 * 1024, 0);
        w("hiberfil.sys", &hib);
    }
    m.unmount();
    img
}

/// An ntfs-3g mount run in the foreground (`no_detach`), so unmounting can wait until every
/// write has reached the image.
pub struct NtfsMount {
    child: Option<Child>,
    dir: PathBuf,
}

impl NtfsMount {
    pub fn mount(image: &Path, dir: &Path) -> NtfsMount {
        NtfsMount::mount_with(image, dir, "no_detach")
    }

    /// Mounted read-only: nothing the test reads can change the image.
    pub fn mount_read_only(image: &Path, dir: &Path) -> NtfsMount {
        NtfsMount::mount_with(image, dir, "no_detach,ro")
    }

    fn mount_with(image: &Path, dir: &Path, options: &str) -> NtfsMount {
        let child = Command::new("ntfs-3g")
            .args(["-o", options])
            .arg(image)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ntfs-3g: {e}; install ntfs-3g (and FUSE)"));
        let mut m = NtfsMount { child: Some(child), dir: dir.to_path_buf() };
        let canonical = fs::canonicalize(dir).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            if mounts.lines().any(|l| l.split(' ').nth(4) == Some(canonical.to_str().unwrap_or(""))) {
                return m;
            }
            if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let mut err = String::new();
                if let Some(mut e) = m.child.take().and_then(|mut c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("ntfs-3g {} {} exited ({status}) before mounting:\n{err}", image.display(), dir.display());
            }
            assert!(Instant::now() < deadline, "ntfs-3g did not mount {} within 10 s", dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn unmount(mut self) {
        let out = Command::new("fusermount").arg("-u").arg(&self.dir).output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        if !ok {
            let _ = Command::new("umount").arg(&self.dir).status();
        }
        if let Some(mut child) = self.child.take() {
            let status = child.wait().expect("waiting for ntfs-3g");
            assert!(status.success(), "ntfs-3g exited with {status}; fusermount said {out:?}");
        }
    }
}

impl Drop for NtfsMount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("fusermount").arg("-u").arg(&self.dir).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A sha256 over a (sparse) image's length and its data extents (found with `SEEK_DATA` /
/// `SEEK_HOLE`), so checking a 4.5 GiB sparse fixture for changes reads only its few MiB of
/// data. Any write to the image changes it: writes land in data extents or create new ones.
pub fn image_fingerprint(path: &Path) -> String {
    use rustix::fs::{seek, SeekFrom as RSeek};
    use sha2::{Digest, Sha256};
    let mut f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let len = f.metadata().map(|m| m.len()).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    let mut at = 0u64;
    let mut buf = vec![0u8; MIB as usize];
    while at < len {
        // ENXIO: no data after `at`.
        let Ok(data) = seek(&f, RSeek::Data(at)) else { break };
        let hole = seek(&f, RSeek::Hole(data)).unwrap_or(len).min(len);
        h.update(data.to_le_bytes());
        f.seek(SeekFrom::Start(data)).unwrap();
        let mut left = hole - data;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n]).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            h.update(&buf[..n]);
            left -= n as u64;
        }
        at = hole;
    }
    format!("{:x}", h.finalize())
}

// ---- Windows installs with real registry hives ---------------------------------------------

/// `tests/data/…`
pub fn data_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel)
}

/// The SOFTWARE and SAM hives of the install `release` (`win10-22h2`, `win11-23h2`): hivex's
/// empty hive (`data/hivex/minimal`) with `data/windows/<release>-{software,sam}.reg` merged
/// in by `hivexregedit --merge`, as `regedit` would load them under `HKLM\SOFTWARE` and
/// `HKLM\SAM`.
pub fn windows_hives(work: &Path, release: &str) -> (PathBuf, PathBuf) {
    let hive = |which: &str, prefix: &str| {
        let out = work.join(format!("{release}-{which}.hive"));
        fs::copy(data_path("hivex/minimal"), &out).expect("copying hivex's minimal hive");
        run(Command::new("hivexregedit")
            .args(["--merge", "--prefix", prefix])
            .arg(&out)
            .arg(data_path(&format!("windows/{release}-{which}.reg"))));
        out
    };
    (hive("software", "HKEY_LOCAL_MACHINE\\SOFTWARE"), hive("sam", "HKEY_LOCAL_MACHINE\\SAM"))
}

/// A GPT disk of the Windows install `release`: partition 1 is `C:` (NTFS "Windows") with
/// the real hives in `Windows\System32\config`, a folder with a document for each of
/// `c_profiles` under `Users\`, `Public` and `Default`; partition 2 is `D:` (NTFS "Data")
/// with `d_profiles` under `Users\`. Written through ntfs-3g.
pub fn windows_registry_disk(dir: &Path, release: &str, c_profiles: &[&str], d_profiles: &[&str]) -> PathBuf {
    let work = workdir(dir, release);
    let (software, sam) = windows_hives(&work, release);
    let volume = |name: &str, label: &str, files: &[(String, Vec<u8>)]| {
        let img = work.join(format!("{name}.ntfs"));
        sparse(&img, 32 * MIB);
        run(Command::new("mkntfs").args(["-F", "-Q", "-L", label]).arg(&img));
        let mnt = work.join(format!("{name}.mnt"));
        fs::create_dir_all(&mnt).unwrap();
        let m = NtfsMount::mount(&img, &mnt);
        for (rel, content) in files {
            let p = mnt.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, content).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        }
        m.unmount();
        img
    };
    let profile = |u: &str| (format!("Users/{u}/Documents/report.txt"), format!("report of {u}\r\n").into_bytes());
    let mut c: Vec<(String, Vec<u8>)> = vec![
        ("Windows/System32/config/SOFTWARE".into(), fs::read(&software).unwrap()),
        ("Windows/System32/config/SAM".into(), fs::read(&sam).unwrap()),
        ("Windows/System32/ntoskrnl.exe".into(), b"MZ fixture kernel".to_vec()),
        ("Users/Public/Documents/shared.txt".into(), b"shared\r\n".to_vec()),
        ("Users/Default/NTUSER.DAT".into(), b"regf default".to_vec()),
    ];
    c.extend(c_profiles.iter().map(|u| profile(u)));
    let d: Vec<(String, Vec<u8>)> = d_profiles.iter().map(|u| profile(u)).collect();
    let (c, d) = (volume("c", "Windows", &c), volume("d", "Data", &d));
    let image = dir.join(format!("{release}.img"));
    gpt_image(&image, 66 * MIB, &[(&c, "0700", "windows"), (&d, "0700", "data")]);
    cleanup(&work);
    image
}

// ---- labels and whole-disk filesystems -----------------------------------------------------

/// What `blkid -p -o export` reads from `image`: each `KEY=value` with the value's raw bytes
/// (blkid prints a FAT label as the bytes on disk).
pub fn blkid_export(image: &Path) -> Vec<(String, Vec<u8>)> {
    let out = Command::new("blkid").args(["-p", "-o", "export"]).arg(image).output().unwrap_or_else(|e| panic!("running blkid: {e} ({})", hint("blkid")));
    out.stdout
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let eq = line.iter().position(|b| *b == b'=')?;
            Some((String::from_utf8_lossy(&line[..eq]).into_owned(), blkid_unescape(&line[eq + 1..])))
        })
        .collect()
}

/// blkid's export escapes undone: `\\c` is `c`; a byte over 0x7F is `M-` and the byte less
/// 0x80, a control byte is `^` and the byte plus 0x40 (`cat -v`'s notation).
fn blkid_unescape(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let high = if v[i..].starts_with(b"M-") && i + 2 < v.len() { i += 2; 0x80 } else { 0 };
        let b = match v[i] {
            b'\\' if i + 1 < v.len() => { i += 1; v[i] }
            b'^' if i + 1 < v.len() => { i += 1; if v[i] == b'?' { 0x7F } else { v[i].wrapping_sub(0x40) } }
            b => b,
        };
        out.push(b | high);
        i += 1;
    }
    out
}

/// One key of [`blkid_export`].
pub fn blkid_value(image: &Path, key: &str) -> Option<Vec<u8>> {
    blkid_export(image).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// `bytes` decoded from the DOS code page `cp` by iconv (`IBM437`, `IBM850`).
pub fn iconv_from(cp: &str, bytes: &[u8]) -> String {
    run_bytes(Command::new("iconv").args(["-f", cp, "-t", "UTF-8"]), bytes)
}

fn run_bytes(cmd: &mut Command, input: &[u8]) -> String {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawning");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8(out.stdout).expect("UTF-8 from iconv")
}

/// A whole-disk FAT (no partition table) of `size` made by `mkfs.fat ARGS`, labelled by
/// mtools' `mlabel` in DOS code page `cp` (mkfs.fat 4.2 refuses non-ASCII labels); `None`
/// keeps mkfs.fat's "NO NAME".
pub fn fat_superfloppy(dir: &Path, name: &str, size: u64, args: &[&str], label: Option<&str>, cp: u16) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    sparse(&img, size);
    run(Command::new("mkfs.fat").args(args).arg(&img));
    if let Some(l) = label {
        run(Command::new("mlabel").env("MTOOLS_DEFAULT_CODEPAGE", cp.to_string()).env("LC_ALL", "C.UTF-8").arg("-i").arg(&img).arg(format!("::{l}")));
    }
    img
}

/// A whole-disk exFAT labelled `label` (UTF-16 on disk).
pub fn exfat_superfloppy(dir: &Path, name: &str, size: u64, label: &str) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    sparse(&img, size);
    run(Command::new("mkfs.exfat").args(["-L", label]).arg(&img));
    img
}

/// A whole-disk NTFS labelled `label`.
pub fn ntfs_superfloppy(dir: &Path, name: &str, size: u64, label: &str) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    sparse(&img, size);
    run(Command::new("mkntfs").args(["-F", "-Q", "-L", label]).arg(&img));
    img
}
