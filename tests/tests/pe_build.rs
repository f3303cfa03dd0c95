//! Properties of the built PE: a static init, an initramfs in budget and in the format the
//! kernel takes, with the module index the init needs.

use std::process::Command;

use inplace_tests::qemu::pe_dir;

const INITRAMFS_BUDGET: u64 = 48 << 20;

#[test]
fn the_binary_is_statically_linked() {
    let bin = pe_dir().join("inplace");
    let out = Command::new("file").arg("-b").arg(&bin).output().expect("running file(1)");
    let what = String::from_utf8_lossy(&out.stdout);
    assert!(what.contains("statically linked"), "file says: {what}");
    // No program interpreter: nothing to load at boot.
    let elf = std::fs::read(&bin).unwrap();
    assert!(!elf.windows(b"ld-musl".len()).any(|w| w == b"ld-musl"), "binary names a dynamic loader");
    let out = Command::new("readelf").arg("-lW").arg(&bin).output();
    if let Ok(out) = out {
        assert!(!String::from_utf8_lossy(&out.stdout).contains("INTERP"), "binary has a PT_INTERP header");
    }
}

#[test]
fn the_initramfs_stays_in_budget() {
    let size = std::fs::metadata(pe_dir().join("initramfs.img")).unwrap().len();
    eprintln!("initramfs.img: {size} bytes ({:.1} MiB)", size as f64 / (1 << 20) as f64);
    assert!(size <= INITRAMFS_BUDGET, "initramfs.img is {size} bytes, over the {INITRAMFS_BUDGET}-byte budget");
}

/// Lists the newc archive: its entry names, after checking every header's magic.
fn newc_names(cpio: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 0usize;
    let hex = |b: &[u8]| usize::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap();
    while pos + 110 <= cpio.len() {
        let h = &cpio[pos..pos + 110];
        assert_eq!(&h[..6], b"070701", "entry at {pos} is not newc");
        let filesize = hex(&h[54..62]);
        let namesize = hex(&h[94..102]);
        let name = String::from_utf8_lossy(&cpio[pos + 110..pos + 110 + namesize - 1]).into_owned();
        if name == "TRAILER!!!" {
            return names;
        }
        names.push(name);
        let data = (pos + 110 + namesize).div_ceil(4) * 4;
        pos = (data + filesize).div_ceil(4) * 4;
    }
    panic!("newc archive has no trailer");
}

#[test]
fn the_initramfs_is_newc_zstd_with_init_and_module_index() {
    let out = Command::new("zstd").args(["-dc"]).arg(pe_dir().join("initramfs.img")).output().expect("zstd -dc");
    assert!(out.status.success(), "initramfs.img is not zstd");
    let names = newc_names(&out.stdout);
    assert!(names.contains(&"init".to_string()), "no /init");
    // The result screen's shell: busybox, with its applets off the PE's own PATH.
    for f in ["bin/busybox", "lib/busybox/sh", "lib/busybox/ls"] {
        assert!(names.contains(&f.to_string()), "no /{f}");
    }
    let release = std::fs::read_to_string(pe_dir().join("kernel-release")).unwrap();
    let moddir = format!("lib/modules/{}", release.trim());
    for f in ["modules.dep", "modules.alias", "modules.softdep", "modules.builtin"] {
        assert!(names.contains(&format!("{moddir}/{f}")), "no {moddir}/{f}");
    }
    // Every module named in kernel-config/modules.txt is there, unless the kernel has it built in.
    let builtin = std::fs::read_to_string(inplace_tests::workspace().join(format!("target/kernel/root/{moddir}/modules.builtin")))
        .unwrap_or_default()
        .replace('-', "_");
    let list = std::fs::read_to_string(inplace_tests::workspace().join("kernel-config/modules.txt")).unwrap();
    for m in list.lines().map(|l| l.split('#').next().unwrap().trim()).filter(|l| !l.is_empty() && !l.starts_with('[')) {
        let file = format!("/{}.ko.xz", m.replace('-', "_"));
        let present = names.iter().any(|n| n.replace('-', "_").ends_with(&file));
        assert!(present || builtin.contains(&format!("/{m}.ko")), "module {m} is neither in the initramfs nor built in");
    }
}

/// Every program of `initramfs/tools` is in the initramfs with each library and the loader
/// `ldd` names for it, so the lay-down can grow filesystems in the PE.
#[test]
fn the_initramfs_holds_the_resize_tools_and_their_libraries() {
    let out = Command::new("zstd").args(["-dc"]).arg(pe_dir().join("initramfs.img")).output().expect("zstd -dc");
    let names = newc_names(&out.stdout);
    let list = std::fs::read_to_string(inplace_tests::workspace().join("initramfs/tools")).unwrap();
    let tools: Vec<&str> = list.lines().map(|l| l.split('#').next().unwrap().trim()).filter(|l| !l.is_empty()).collect();
    for want in ["e2fsck", "resize2fs", "ntfsresize", "ntfsfix"] {
        assert!(tools.iter().any(|t| t.ends_with(&format!("/{want}"))), "initramfs/tools does not list {want}");
    }
    for tool in tools {
        let ldd = Command::new("ldd").arg(tool).output().expect("ldd");
        let libs = String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')).map(str::to_string).collect::<Vec<_>>();
        assert!(!libs.is_empty(), "ldd lists nothing for {tool}");
        for f in std::iter::once(tool.to_string()).chain(libs) {
            assert!(names.contains(&f.trim_start_matches('/').to_string()), "the initramfs lacks {f} (for {tool})");
        }
    }
}

const ISO_BUDGET: u64 = 128 << 20;

#[test]
fn the_iso_stays_in_budget() {
    let size = std::fs::metadata(pe_dir().join("inplace.iso")).expect("target/pe/inplace.iso: run scripts/build-pe").len();
    eprintln!("inplace.iso: {size} bytes ({:.1} MiB)", size as f64 / (1 << 20) as f64);
    assert!(size <= ISO_BUDGET, "inplace.iso is {size} bytes, over the {ISO_BUDGET}-byte budget");
}

/// The PXE tree holds what iPXE and UEFI network boot load.
#[test]
fn the_pxe_tree_is_complete() {
    let pxe = pe_dir().join("pxe");
    for f in ["vmlinuz", "initramfs.img", "boot.ipxe", "grub/grub.cfg", "bootx64.efi", "grubx64.efi"] {
        assert!(pxe.join(f).is_file(), "target/pe/pxe/{f} is missing");
    }
    let script = std::fs::read_to_string(pxe.join("boot.ipxe")).unwrap();
    assert!(script.starts_with("#!ipxe\n") && script.contains("kernel vmlinuz") && script.contains("console=ttyS0,115200"), "{script}");
}
