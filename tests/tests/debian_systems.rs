//! The real Debian 12 test systems themselves (tests/src/debian.rs), checked with the real tools
//! and without inplace: the old machine's partition table and its root as `debugfs` reads it
//! against the expected manifest, and both the new OS and the old machine booting on OVMF under
//! TCG to a serial login. Feature `debian` (part of `pe`): the first run builds the Debian root
//! with mmdebstrap (about 2 minutes), later runs reuse it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use inplace_tests::debian::{self, DebianDisk, Kind, OldMachine, ALICE_PASSWORD};
use inplace_tests::fixtures::run;
use inplace_tests::qemu::{Controller, Vm};

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(60);

// ---- fixture self-checks (no QEMU) ------------------------------------------------------------------

/// The partition table of a disk as sfdisk reads it: `(first LBA, last LBA)` per partition, and
/// the last usable LBA.
fn table(disk: &Path) -> (Vec<(u64, u64)>, u64) {
    let json: serde_json::Value = serde_json::from_str(&run(Command::new("sfdisk").arg("--json").arg(disk))).unwrap();
    let t = &json["partitiontable"];
    assert_eq!(t["label"], "gpt", "{json}");
    let parts = t["partitions"].as_array().unwrap().iter().map(|p| {
        let start = p["start"].as_u64().unwrap();
        (start, start + p["size"].as_u64().unwrap() - 1)
    });
    (parts.collect(), t["lastlba"].as_u64().unwrap())
}

/// No unallocated space: partitions are contiguous from the first at 1 MiB, and the last ends
/// at the last usable LBA.
fn assert_no_free_space(d: &DebianDisk) {
    let (parts, last_lba) = table(&d.path);
    assert_eq!(parts.len(), d.partitions.len(), "{parts:?}");
    assert_eq!(parts[0].0, 2048, "{parts:?}");
    for w in parts.windows(2) {
        assert_eq!(w[1].0, w[0].1 + 1, "a gap between partitions: {parts:?}");
    }
    assert_eq!(parts.last().unwrap().1, last_lba, "space after the last partition: {parts:?}");
    assert_eq!(last_lba, debian::last_usable_lba(d.size));
    let free = run(Command::new("sfdisk").arg("--list-free").arg(&d.path));
    assert!(!free.contains("Start"), "sfdisk lists free space:\n{free}");
    for (p, (first, last)) in d.partitions.iter().zip(&parts) {
        assert_eq!((p.start, p.size), (first * 512, (last - first + 1) * 512), "partition {}", p.number);
    }
}

fn debugfs(fs: &Path, request: &[u8]) -> String {
    use std::os::unix::ffi::OsStrExt;
    run(Command::new("debugfs").arg("-R").arg(std::ffi::OsStr::from_bytes(request)).arg(fs))
}

/// debugfs's view of the root against the manifest: accounts in passwd, shadow (yescrypt) and
/// group; every file's sha256, owner, mode and mtime; symlinks, the hard link, the sparse file,
/// the xattrs and the ACL; the excluded trees exist on the source.
fn check_root(m: &OldMachine, dir: &Path) {
    let fs = dir.join("root.ext4");
    m.disk.extract_partition(&m.disk.path, m.disk.root().number, &fs);
    let passwd = debugfs(&fs, b"cat /etc/passwd");
    let shadow = debugfs(&fs, b"cat /etc/shadow");
    let group = debugfs(&fs, b"cat /etc/group");
    for a in &m.manifest.accounts {
        let line = format!("{}:x:{}:{}:{}:{}:{}", a.name, a.uid, a.gid, a.gecos, a.home, a.shell);
        assert!(passwd.lines().any(|l| l == line), "no {line:?} in passwd:\n{passwd}");
        let hash = shadow.lines().find_map(|l| l.strip_prefix(&format!("{}:", a.name))).unwrap_or_else(|| panic!("{} not in shadow", a.name));
        assert!(hash.starts_with("$y$"), "{}: not a yescrypt hash: {hash}", a.name);
        for g in &a.groups {
            let members = group.lines().find_map(|l| l.strip_prefix(&format!("{g}:x:"))).unwrap_or_else(|| panic!("no group {g}"));
            assert!(members.split(':').nth(1).unwrap_or("").split(',').any(|u| u == a.name), "{} not in {g}: {members}", a.name);
        }
        assert!(group.lines().any(|l| l.starts_with(&format!("{}:x:{}:", a.name, a.gid))), "no group {}", a.name);
    }
    assert_eq!(m.manifest.account("bob").uid, 1234);
    assert_eq!(debugfs(&fs, b"cat /etc/hostname"), "oldbox\n");
    let nm = debugfs(&fs, b"stat /etc/NetworkManager/system-connections/office.nmconnection");
    assert!(nm.contains("Mode:  0600") && nm.contains("User:     0"), "{nm}");

    let dump = dir.join("dump");
    let mut files = 0;
    for e in m.manifest.entries.iter().filter(|e| e.partition == m.disk.root().number) {
        let src = e.source.clone();
        let stat = debugfs(&fs, &[b"stat \"".as_slice(), &src, b"\""].concat());
        let mode = u32::from_str_radix(stat.split("Mode:  ").nth(1).unwrap().split_whitespace().next().unwrap(), 8).unwrap();
        assert_eq!(Some(mode), e.mode, "{}: {stat}", e.display());
        let mtime = stat.lines().find(|l| l.trim_start().starts_with("mtime:")).unwrap_or_else(|| panic!("{stat}"));
        let hex = mtime.split("0x").nth(1).unwrap().split([':', ' ']).next().unwrap();
        assert_eq!(i64::from(u32::from_str_radix(hex, 16).unwrap() as i32), e.mtime, "{}: {mtime}", e.display());
        match e.kind {
            Kind::File => {
                let _ = std::fs::remove_file(&dump);
                debugfs(&fs, &[b"dump -p \"".as_slice(), &src, b"\" ".as_slice(), dump.to_str().unwrap().as_bytes()].concat());
                assert_eq!(Some(inplace_tests::sha256_file(&dump)), e.sha256, "{}", e.display());
                files += 1;
            }
            Kind::Symlink => {
                let target = String::from_utf8_lossy(e.target.as_ref().unwrap()).into_owned();
                assert!(stat.contains(&format!("Fast link dest: \"{target}\"")), "{}: {stat}", e.display());
            }
            Kind::Dir => assert!(stat.contains("Type: directory"), "{}: {stat}", e.display()),
        }
        let ea = debugfs(&fs, &[b"ea_list \"".as_slice(), &src, b"\"".as_slice()].concat());
        for (k, v) in &e.xattrs {
            let shown = match std::str::from_utf8(v) {
                Ok(s) => format!("{k} ({}) = \"{s}\"", v.len()),
                Err(_) => format!("{k} ({}) = {}", v.len(), v.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")),
            };
            assert!(ea.contains(&shown), "{}: {shown:?} not in debugfs ea_list:\n{ea}", e.display());
        }
        if !e.acl.is_empty() {
            assert!(ea.contains("system.posix_acl_access"), "{}: no ACL on disk:\n{ea}", e.display());
        }
        if !e.default_acl.is_empty() {
            assert!(ea.contains("system.posix_acl_default"), "{}: no default ACL on disk:\n{ea}", e.display());
        }
    }
    assert!(files >= 20, "only {files} files checked");

    // The special cases are really there.
    let alice = |p: &str| m.manifest.entry(Some("alice"), p);
    let tagged = alice("Documents/tagged.txt");
    assert_eq!(tagged.xattrs.get("user.xdg.comment").map(Vec::as_slice), Some(b"quarterly figures, checked twice".as_slice()));
    assert_eq!(tagged.xattrs.get("user.inplace.binary").map(Vec::as_slice), Some([0u8, 1, 2, 0xfe, 0xff].as_slice()));
    let shared = alice("Documents/shared-with-bob.txt");
    assert_eq!(shared.acl, ["user::rw-", "user:bob:rw-", "group::rw-", "mask::rw-", "other::r--"]);
    // On disk in ext4's own ACL format (version 1 header), which debugfs turns back into the
    // kernel's xattr form: the same entries as the manifest's.
    let ea = debugfs(&fs, b"ea_list /home/alice/Documents/shared-with-bob.txt");
    assert!(ea.contains("system.posix_acl_access (28) = 01 00 00 00 "), "{ea}");
    let raw = debugfs(&fs, b"ea_get /home/alice/Documents/shared-with-bob.txt system.posix_acl_access");
    let hex = raw.split(" = ").nth(1).unwrap_or_else(|| panic!("{raw}"));
    let bytes: Vec<u8> = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
    let names: BTreeMap<u32, String> = m.manifest.accounts.iter().map(|a| (a.uid, a.name.clone())).collect();
    let gnames: BTreeMap<u32, String> = m.manifest.accounts.iter().map(|a| (a.gid, a.name.clone())).collect();
    assert_eq!(debian::decode_acl(&bytes, &names, &gnames), shared.acl);
    let projects = alice("Documents/projects");
    assert_eq!(projects.default_acl, ["user::rwx", "user:bob:r-x", "group::r-x", "mask::r-x", "other::r-x"]);
    assert!(projects.xattrs.contains_key("user.xdg.origin.url"));
    let h1 = alice("Documents/report.txt");
    assert!(h1.link_group.is_some() && h1.link_group == alice("Documents/report (hard link).txt").link_group);
    assert!(debugfs(&fs, b"stat /home/alice/Documents/report.txt").contains("Links: 2"));
    let sparse = alice("vm/disk.img");
    assert_eq!(sparse.size, 64 << 20);
    assert_eq!(sparse.sparse_runs.as_ref().map(Vec::len), Some(3), "{:?}", sparse.sparse_runs);
    let stat = debugfs(&fs, b"stat /home/alice/vm/disk.img");
    let blocks: u64 = stat.split("Blockcount: ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(blocks * 512 < 1 << 20, "the sparse file lost its holes: {stat}");
    let latin1 = m.manifest.entries.iter().find(|e| e.path == b"Documents/na\xefve-latin1.txt").expect("the Latin-1 name");
    assert!(std::str::from_utf8(&latin1.source).is_err());
    assert_eq!(alice("notes-link").target.as_deref(), Some(b"Documents/notes.txt".as_slice()));
    assert_eq!(alice("bin/backup.sh").mode, Some(0o755));
    assert_eq!(alice("Documents/private.txt").mode, Some(0o600));
    assert_eq!(alice("Documents/empty.txt").size, 0);
    assert!(m.manifest.entries.iter().any(|e| e.user.as_deref() == Some("alice") && e.path == b".bashrc"), "skel files");
    assert!(m.manifest.entries.iter().any(|e| e.user.is_none() && e.path == b"etc/hostname"));
    // Excluded trees hold data on the source and are not in the manifest.
    for x in m.manifest.excluded.iter().filter(|x| x.partition == m.disk.root().number) {
        let ls = debugfs(&fs, &[b"ls -l \"".as_slice(), &x.source, b"\"".as_slice()].concat());
        assert!(ls.lines().count() > 2, "{}: empty on the source:\n{ls}", String::from_utf8_lossy(&x.source));
        assert!(!m.manifest.entries.iter().any(|e| e.source.starts_with(&x.source)));
    }
    let user_bytes: u64 = m.manifest.entries.iter().filter(|e| e.kind == Kind::File && e.sparse_runs.is_none()).map(|e| e.size).sum();
    assert!(user_bytes < 40 << 20, "{user_bytes} bytes of user data: keep the fixture small");
}

#[test]
fn old_machine_disk_matches_its_manifest() {
    let t = Instant::now();
    let m = debian::old_machine();
    eprintln!("old machine ready in {:.1?}", t.elapsed());
    assert_no_free_space(&m.disk);
    let dir = tempfile::tempdir().unwrap();
    check_root(&m, dir.path());
    // The store has room in the root's free tail: most of the 3.7 GiB ext4 is free.
    let fs = dir.path().join("root.ext4");
    let sb = run(Command::new("dumpe2fs").arg("-h").arg(&fs));
    let field = |k: &str| -> u64 { sb.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().parse().unwrap() };
    let (free, total) = (field("Free blocks:"), field("Block count:"));
    assert!(free * 4 > total * 3, "only {free} of {total} blocks free");
    assert!(sb.contains(&format!("Filesystem UUID:          {}", m.disk.root().fs_uuid)), "{sb}");
}

#[test]
fn old_machine_with_ntfs_disk_matches_its_manifest() {
    let m = debian::old_machine_with_ntfs();
    assert_no_free_space(&m.disk);
    assert_eq!(m.disk.partitions.iter().map(|p| p.fs.as_str()).collect::<Vec<_>>(), ["vfat", "ext4", "ntfs"]);
    let dir = tempfile::tempdir().unwrap();
    check_root(&m, dir.path());
    // Carol's profile through ntfs-3g's own tools, read-only.
    let vol = dir.path().join("data.ntfs");
    m.disk.extract_partition(&m.disk.path, 3, &vol);
    let carol: Vec<_> = m.manifest.user_entries("Carol").collect();
    assert!(carol.len() >= 10, "{carol:?}");
    for e in carol.iter().filter(|e| e.kind == Kind::File) {
        let f = dir.path().join("cat");
        let data = Command::new("ntfscat").arg(&vol).arg(e.source_path()).output().unwrap();
        assert!(data.status.success(), "{}: {}", e.display(), String::from_utf8_lossy(&data.stderr));
        std::fs::write(&f, &data.stdout).unwrap();
        assert_eq!(Some(inplace_tests::sha256_file(&f)), e.sha256, "{}", e.display());
        assert_eq!((e.owner.as_str(), e.group.as_deref(), e.mode), ("Carol", None, None));
    }
    assert!(carol.iter().any(|e| e.path == "Pictures/Urlaub 🏖.jpg".as_bytes()));
    assert!(carol.iter().any(|e| e.path == "Documents/報告書.txt".as_bytes()));
    assert!(!carol.iter().any(|e| e.path.starts_with(b"AppData")));
    let temp = run(Command::new("ntfsls").arg("-f").arg(&vol).args(["-p", "/Users/Carol/AppData/Local/Temp"]));
    assert!(temp.contains("junk.dat"), "{temp}");
    assert!(m.manifest.excluded.iter().any(|x| x.partition == 3 && x.source == b"/Users/Carol/AppData/Local/Temp"));
}

#[test]
fn new_os_disk_layout() {
    let d = debian::new_os_disk();
    let (parts, _) = table(&d.path);
    assert_eq!(parts.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let esp = dir.path().join("esp.fat");
    d.extract_partition(&d.path, 1, &esp);
    let e = esp.to_str().unwrap();
    let list = run(Command::new("mdir").args(["-i", e, "-/", "-b"]).arg("::/"));
    for want in ["EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi", "loader/loader.conf", "loader/entries/debian.conf"] {
        assert!(list.contains(want), "{want} not on the ESP:\n{list}");
    }
    let entry = run(Command::new("mtype").args(["-i", e, "::/loader/entries/debian.conf"]));
    assert!(entry.contains(&format!("options root=UUID={} ro console=ttyS0,115200 console=tty0", d.root().fs_uuid)), "{entry}");
    let root = dir.path().join("root.ext4");
    d.extract_partition(&d.path, 2, &root);
    let fstab = debugfs(&root, b"cat /etc/fstab");
    assert!(fstab.contains(&format!("UUID={} / ext4", d.root().fs_uuid)) && fstab.contains(&format!("UUID={} /boot/efi vfat", d.esp().fs_uuid)), "{fstab}");
    assert_eq!(debugfs(&root, b"cat /etc/hostname"), "newbox\n");
    let shadow = debugfs(&root, b"cat /etc/shadow");
    assert!(shadow.lines().any(|l| l.starts_with("root:*:")), "root is not locked:\n{shadow}");
    assert!(!debugfs(&root, b"cat /etc/passwd").lines().any(|l| l.split(':').nth(2).and_then(|u| u.parse::<u32>().ok()).is_some_and(|u| (1000..65534).contains(&u))));
    // Content plus modest headroom: mostly used, but with room to boot and write.
    let sb = run(Command::new("dumpe2fs").arg("-h").arg(&root));
    let field = |k: &str| -> u64 { sb.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().parse().unwrap() };
    let (free, total) = (field("Free blocks:"), field("Block count:"));
    assert!(free * 10 > total && free * 2 < total, "{free} of {total} blocks free");
    let copy = d.copy_to(dir.path());
    run(Command::new("cmp").arg(&d.path).arg(&copy));
    assert!(std::fs::metadata(&copy).map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512).unwrap() < d.size, "the copy is not sparse");
}

// ---- booting them (OVMF, q35, TCG) --------------------------------------------------------------------

#[test]
fn new_os_boots_to_a_serial_login_prompt() {
    let d = debian::new_os_disk();
    let dir = tempfile::tempdir().unwrap();
    let disk = d.copy_to(dir.path());
    let mut s = Vm::installed(&disk, Controller::VirtioBlk).start();
    let boot = s.wait_for_login_prompt(BOOT_TIMEOUT).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("new OS: login prompt after {boot:.1?} (OVMF, TCG)");
    let serial = s.serial();
    assert!(serial.contains("newbox login: "), "{}", s.tail(3000));
    assert!(serial.contains(&d.kernel_release) || serial.contains("Linux version"), "{}", s.tail(3000));
    let ended = s.poweroff(STEP).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(ended.status.is_some_and(|st| st.success()), "{:?}", ended.status);
    eprintln!("new OS: powered off after {:.1?}", ended.elapsed);
}

#[test]
fn old_machine_boots_and_alice_logs_in() {
    let m = debian::old_machine();
    let dir = tempfile::tempdir().unwrap();
    let disk = m.disk.copy_to(dir.path());
    let mut s = Vm::installed(&disk, Controller::VirtioBlk).start();
    let boot = s.wait_for_login_prompt(BOOT_TIMEOUT).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("old machine: login prompt after {boot:.1?} (OVMF, TCG)");
    assert!(s.serial().contains("oldbox login: "), "{}", s.tail(3000));
    let t = Instant::now();
    s.login("alice", ALICE_PASSWORD, STEP).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("old machine: alice logged in after {:.1?}", t.elapsed());
    let id = s.run("id", STEP).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(id.status, 0, "{id:?}");
    assert!(id.output.contains("uid=1000(alice)") && id.output.contains("(sudo)") && id.output.contains("(audio)"), "{id:?}");
    let home = s.run("cat ~/Documents/report.txt; hostname; stat -c %a ~/bin/backup.sh", STEP).unwrap();
    assert_eq!(home.output, "quarterly report: one inode, two names\noldbox\n755\n", "{home:?}");
    let failing = s.run("false", STEP).unwrap();
    assert_eq!(failing.status, 1);
    let ended = s.poweroff(STEP).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(ended.status.is_some_and(|st| st.success()), "{:?}", ended.status);
    eprintln!("old machine: powered off after {:.1?} in all", ended.elapsed);
}
