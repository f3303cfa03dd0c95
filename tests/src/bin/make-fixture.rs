//! Writes one test fixture disk image: `make-fixture NAME OUT.img` (used by scripts/demo).

use inplace_tests::{debian, fixtures, migrate_fixtures};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!(
            "usage: make-fixture gpt_multi_os|mbr_extended|gpt_4k|blank|linux_migrate|windows_migrate|debian_old|debian_old_ntfs|debian_new OUT.img"
        );
        std::process::exit(2);
    };
    let debian = match name.as_str() {
        "debian_old" => Some(debian::old_machine().disk),
        "debian_old_ntfs" => Some(debian::old_machine_with_ntfs().disk),
        "debian_new" => Some(debian::new_os_disk()),
        _ => None,
    };
    if let Some(d) = debian {
        // A sparse copy of the cached disk.
        let status = std::process::Command::new("cp").args(["--sparse=always", "--reflink=auto"]).arg(&d.path).arg(out).status();
        assert!(status.is_ok_and(|s| s.success()), "copying {}", d.path.display());
        println!("{out}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let migrate = match name.as_str() {
        "linux_migrate" => Some(migrate_fixtures::linux_disk(dir.path())),
        "windows_migrate" => Some(migrate_fixtures::windows_disk(dir.path())),
        _ => None,
    };
    if let Some(m) = migrate {
        if std::fs::rename(&m.disk, out).is_err() {
            std::fs::copy(&m.disk, out).expect("copying the fixture");
        }
        println!("{out} partition {}", m.partition);
        return;
    }
    let fixture = match name.as_str() {
        "gpt_multi_os" => fixtures::gpt_multi_os(dir.path()),
        "mbr_extended" => fixtures::mbr_extended(dir.path()),
        "gpt_4k" => fixtures::gpt_4k(dir.path()),
        "blank" => fixtures::blank(dir.path()),
        other => {
            eprintln!("make-fixture: unknown fixture {other:?}");
            std::process::exit(2);
        }
    };
    // A rename keeps the file sparse; fall back to a copy across filesystems.
    if std::fs::rename(&fixture.path, out).is_err() {
        std::fs::copy(&fixture.path, out).expect("copying the fixture");
    }
    println!("{out}");
}
