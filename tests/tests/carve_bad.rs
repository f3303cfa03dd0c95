//! Bad input for `inplace carve/locate/rollback` on real images: each gets a clear error that
//! names the problem and what to do, and the image's sha256 is unchanged. A damaged primary
//! GPT is repaired only with `--repair-gpt`, and then the carve succeeds.

use inplace_tests::carve_fixtures::{self as cf, inplace, text, MIB};
use inplace_tests::fixtures;
use inplace_tests::sha256_file;

#[test]
fn disk_too_full_is_refused_with_the_sizes() {
    let dir = cf::tmp("full");
    // 64 MiB: the ESP and an ext4 root filling the rest; its free tail is far below 60 MiB.
    let d = cf::gpt_ext4(&dir, 64, None);
    let before = sha256_file(&d.path);
    let o = inplace(&["plan", "--disk", d.disk(), "--store-size", "60M", "--replace", "2", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (needed, best) = (v["refusal"]["needed"].as_u64().unwrap(), v["refusal"]["best"].as_u64().unwrap());
    assert_eq!(needed, 61 * MIB);
    assert!(best > 0 && best < needed, "{v}");
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "60M", "--replace", "2", "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    let best_text = inplace::carve::model::human(best);
    assert!(t.contains("cannot carve a store partition of 61 MiB") && t.contains(&format!("the largest that fits is {best_text}")), "{t}");
    assert!(t.contains("partition 2 (ext4) is replaced by the image; its filesystem has") && t.contains("external store"), "{t}");
    assert!(t.contains("nothing was written"), "{t}");
    assert_eq!(sha256_file(&d.path), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_primary_gpt_is_repaired_only_when_asked() {
    let dir = cf::tmp("repair");
    let d = cf::gpt_ext4(&dir, 128, Some(32));
    let parts = d.part_hashes();
    // Flip a byte of the primary header (its first-usable LBA): the header CRC fails, the
    // backup at the end of the disk is intact.
    let b = cf::read_at(&d.path, 512 + 40, 1);
    cf::write_at(&d.path, 512 + 40, &[b[0] ^ 0xff]);
    let before = sha256_file(&d.path);
    for args in [&["plan", "--disk", d.disk(), "--store-size", "40M"][..], &["carve", "--disk", d.disk(), "--store-size", "40M", "--yes"]] {
        let o = inplace(args);
        assert!(!o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("primary GPT is damaged") && t.contains("--repair-gpt") && t.contains("nothing was written"), "{t}");
        assert_eq!(sha256_file(&d.path), before);
    }
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "40M", "--repair-gpt", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("rebuilt the primary GPT from the backup"), "{}", text(&o));
    cf::sgdisk_verify(&d.path);
    cf::fsck_store(&d.path, &dir);
    for (n, sha) in &parts {
        let p = d.part(*n);
        assert_eq!(&cf::sha_range(&d.path, p.start, p.size), sha, "partition {n} changed");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn overlapping_mbr_and_oversized_store_and_damaged_locator() {
    let dir = cf::tmp("bad");
    // Overlapping MBR entries.
    let f = fixtures::mbr_overlap(&dir);
    let before = sha256_file(&f.path);
    let o = inplace(&["carve", "--disk", f.path.to_str().unwrap(), "--store-size", "1M", "--yes"]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("overlap") && t.contains("nothing was written") && t.contains("mbr_overlap.img"), "{t}");
    assert_eq!(sha256_file(&f.path), before);

    // A store larger than the disk.
    let d = cf::gpt_ext4(&dir, 128, Some(32));
    let before = sha256_file(&d.path);
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "1T", "--yes"]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("larger than the whole disk") && t.contains("--store-size") && t.contains("nothing was written"), "{t}");
    assert_eq!(sha256_file(&d.path), before);

    // A locator with a bad checksum: found, named, and not trusted for a rollback.
    let o = inplace(&["carve", "--disk", d.disk(), "--store-size", "40M", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = inplace(&["locate", "--disk", d.disk(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for at in v["valid_at"].as_array().unwrap() {
        let at = at.as_u64().unwrap() + 70;
        let b = cf::read_at(&d.path, at, 1);
        cf::write_at(&d.path, at, &[b[0] ^ 1]);
    }
    let before = sha256_file(&d.path);
    let o = inplace(&["locate", "--disk", d.disk()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("CRC-32 does not match") && text(&o).contains("do not roll back"), "{}", text(&o));
    let o = inplace(&["rollback", "--disk", d.disk(), "--yes"]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("CRC-32 does not match") && t.contains("nothing was written"), "{t}");
    assert_eq!(sha256_file(&d.path), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A refused plan says each thing the user can do exactly once, in the CLI's words, and that
/// nothing was written once.
#[test]
fn refused_plan_gives_each_advice_once() {
    let dir = cf::tmp("advice");
    let d = cf::gpt_ext4(&dir, 64, None);
    let before = sha256_file(&d.path);
    let o = inplace(&["plan", "--disk", d.disk(), "--store-size", "60M", "--replace", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o).to_lowercase();
    for advice in ["ask for a smaller store (--store-size", "use an external store", "free space at the end of the partition the image replaces", "nothing was written", "what you can do:"] {
        assert_eq!(t.matches(advice).count(), 1, "{advice:?} once in:\n{t}");
    }
    // The same refusal as data: each hint once.
    let o = inplace(&["plan", "--disk", d.disk(), "--store-size", "60M", "--replace", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hints = v["refusal"]["hints"].as_array().unwrap();
    for (i, h) in hints.iter().enumerate() {
        assert!(!hints[i + 1..].contains(h), "{h} twice in {hints:?}");
    }
    assert!(hints.iter().any(|h| h["do"] == "smaller-store") && hints.iter().any(|h| h["do"] == "external-store"), "{hints:?}");
    assert_eq!(sha256_file(&d.path), before);

    // Kept partition with room: the CLI names the flag that marks it replaced, once.
    let d = cf::gpt_ext4(&dir, 144, None);
    let before = sha256_file(&d.path);
    let o = inplace(&["plan", "--disk", d.disk(), "--store-size", "40M"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o).to_lowercase();
    for advice in ["say so with --replace 2", "use an external store", "nothing was written"] {
        assert_eq!(t.matches(advice).count(), 1, "{advice:?} once in:\n{t}");
    }
    assert_eq!(sha256_file(&d.path), before);
    std::fs::remove_dir_all(&dir).unwrap();
}
