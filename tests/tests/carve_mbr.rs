//! `inplace carve` on real MBR images made with sfdisk: four primaries (no entry left: a clear
//! refusal), and an extended partition whose EBRs and logical partitions all lie beyond 4 GiB
//! (a new logical partition inside it, and one that needs the extended partition to grow).
//! Checked with `sfdisk --verify`, `sfdisk --dump`, a hand walk of the EBR chain, fsck.fat -n
//! on the store and sha256 of every partition; then `inplace rollback` restores the table.

use std::path::Path;
use std::process::Command;

use inplace_tests::carve_fixtures::{self as cf, inplace, read_at, text, CarveDisk, MIB};
use inplace_tests::fixtures::run;
use inplace_tests::sha256_file;

#[test]
fn mbr_four_primaries_is_refused_clearly() {
    let dir = cf::tmp("mbr-four");
    let d = cf::mbr_four_primaries(&dir);
    let before = sha256_file(&d.path);
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "40M", "--replace", "1", "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("all four primary partition slots") && t.contains("no extended partition"), "{t}");
    assert!(t.contains("41 MiB") && t.contains("nothing was written"), "{t}");
    assert!(!t.contains("--store-size 0 bytes"), "advice must not suggest an empty store: {t}");
    assert_eq!(sha256_file(&d.path), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// sfdisk's `--dump` lines, without the header.
fn dump(img: &Path) -> Vec<String> {
    run(Command::new("sfdisk").arg("--dump").arg(img)).lines().filter(|l| l.contains("start=")).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

/// Carves `store` on a fresh copy of the fixture and checks everything, then rolls back;
/// returns the locator and the extended partition's size (sectors) after the carve.
fn carve_logical(dir: &Path, d: &CarveDisk, store: &str) -> (serde_json::Value, u64) {
    let before = d.part_hashes();
    let sector0 = read_at(&d.path, 0, 512);
    let chain_before = cf::ebr_chain(&d.path);
    let dump_before = dump(&d.path);
    let (ext_start, ext_len) = cf::extended(&d.path).unwrap();

    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", store, "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    cf::sfdisk_verify(&d.path);
    let l = cf::fsck_store(&d.path, dir);
    let (s, n) = (l["store_start"].as_u64().unwrap(), l["store_len"].as_u64().unwrap());
    assert_eq!(l["store_number"], 7);
    assert!(s > 4 << 30);

    // The chain: the two old EBRs where they were, describing the same logical partitions;
    // a third, beyond 4 GiB, describing the store; the links right (checked by ebr_chain).
    let chain = cf::ebr_chain(&d.path);
    assert_eq!(chain.len(), 3, "{chain:?}");
    for (old, new) in chain_before.iter().zip(&chain) {
        assert_eq!((old.lba, old.logical), (new.lba, new.logical));
    }
    let new = &chain[2];
    assert_eq!(new.logical, (s / 512, n / 512, 0x0c));
    assert!(new.lba * 512 > 4 << 30 && new.lba * 512 >= chain[1].logical.0 * 512 + chain[1].logical.1 * 512 && new.lba < s / 512);
    assert_eq!(chain[1].link, Some((new.lba - ext_start, n / 512 + (s / 512 - new.lba))));
    // The first EBR is byte-identical (only the last one's link changes).
    assert_eq!(read_at(&d.path, chain[0].lba * 512, 512), read_at(&cf_orig(dir), chain[0].lba * 512, 512));

    // sfdisk reads the same table: every old line is there (the extended one maybe grown),
    // plus the store.
    let after = dump(&d.path);
    let ext_line = |size: u64| format!("start= {ext_start}, size= {size}, type=5");
    let (_, new_ext_len) = cf::extended(&d.path).unwrap();
    for line in &dump_before {
        let want = if line.contains("type=5") { ext_line(new_ext_len) } else { line.clone() };
        assert!(after.iter().any(|a| a.ends_with(&want)), "{want:?} not in {after:?}");
    }
    assert!(after.iter().any(|a| a.ends_with(&format!("start= {}, size= {}, type=c", s / 512, n / 512))), "{after:?}");
    assert!(ext_start + new_ext_len >= (s + n) / 512 && new_ext_len >= ext_len);

    // Sector 0: boot code, disk signature and the other entries are as they were.
    let s0 = read_at(&d.path, 0, 512);
    let ext_slot = (0..4).find(|i| s0[446 + i * 16 + 4] == 0x05).unwrap();
    for (i, (a, b)) in s0.iter().zip(&sector0).enumerate() {
        let size_field = 446 + ext_slot * 16 + 12..446 + ext_slot * 16 + 16;
        assert!(a == b || size_field.contains(&i), "sector 0 byte {i} changed");
    }
    for (n, sha) in &before {
        let p = d.part(*n);
        assert_eq!(&cf::sha_range(&d.path, p.start, p.size), sha, "partition {n} changed");
    }

    // Rollback puts sector 0 and the EBRs back byte for byte.
    let o = inplace(&["rollback", "--disk", d.disk(), "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read_at(&d.path, 0, 512), sector0);
    assert_eq!(cf::ebr_chain(&d.path), chain_before);
    assert_eq!(dump(&d.path), dump_before);
    for e in &chain_before {
        assert_eq!(read_at(&d.path, e.lba * 512, 512), read_at(&cf_orig(dir), e.lba * 512, 512));
    }
    cf::sfdisk_verify(&d.path);
    (l, new_ext_len)
}

fn cf_orig(dir: &Path) -> std::path::PathBuf {
    dir.join("orig.img")
}

#[test]
fn mbr_logicals_past_4_gib() {
    let dir = cf::tmp("mbr-4g");
    let fixture = cf::mbr_logicals_past_4g(&dir);
    std::fs::rename(&fixture.path, cf_orig(&dir)).unwrap();
    let copy = |d: &CarveDisk| {
        run(Command::new("cp").arg("--sparse=always").arg(cf_orig(&dir)).arg(&d.path));
    };
    let d = fixture.clone();

    // 100 MiB fit inside the extended partition, after logical 6: it does not grow.
    copy(&d);
    let (_, ext_len) = cf::extended(&d.path).unwrap();
    let (l, grown) = carve_logical(&dir, &d, "100M");
    assert!(l["store_start"].as_u64().unwrap() + l["store_len"].as_u64().unwrap() <= 4300 * MIB);
    assert_eq!(grown, ext_len);

    // 300 MiB do not: the extended partition grows into the free space after it.
    copy(&d);
    let (l, grown) = carve_logical(&dir, &d, "300M");
    assert!(l["store_start"].as_u64().unwrap() >= 4300 * MIB);
    assert!(grown > ext_len);
    std::fs::remove_dir_all(&dir).unwrap();
}
