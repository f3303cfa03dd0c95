//! Writes one test fixture disk image: `make-fixture NAME OUT.img` (used by scripts/demo).

use inplace_tests::fixtures;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: make-fixture gpt_multi_os|mbr_extended|gpt_4k|blank OUT.img");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().expect("tempdir");
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
