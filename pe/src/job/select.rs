//! Which disk a job takes: the preset's selector applied to the inventory, never the disk the
//! PE booted from nor the one holding the stick's `INPLACE` partition. Nothing but exactly one
//! match is accepted.

use crate::error::{Error, Hint};
use crate::inventory::{Disk, Partition};
use crate::preset::{DiskMatch, DiskSelector};
use crate::step::Step;
use crate::units::{human, parse_size};

/// How far a disk's size may be from a selector's `size` (vendors round).
const SIZE_TOLERANCE: f64 = 0.02;

/// The disk `selector` picks among `disks`, leaving out the `excluded` ones (kernel names or
/// paths: the boot medium, the stick).
pub fn select<'a>(disks: &'a [Disk], excluded: &[String], selector: &DiskSelector) -> Result<&'a Disk, Error> {
    let candidates: Vec<&Disk> = disks.iter().filter(|d| !excluded.contains(&d.name)).collect();
    let matching: Vec<&Disk> = candidates.iter().copied().filter(|d| matches(d, selector)).collect();
    let what = describe_selector(selector);
    match matching.as_slice() {
        [one] => Ok(one),
        [] => {
            if let (DiskSelector::Os, Some(e)) = (selector, locked_system(&candidates)) {
                return Err(e);
            }
            let seen: Vec<String> = candidates.iter().map(|d| describe(d)).collect();
            let mut problem = format!("no disk matches {what}");
            problem.push_str(&if seen.is_empty() {
                "; no disk other than the boot medium was found".to_string()
            } else {
                format!("; the disks are: {}", seen.join("; "))
            });
            Err(Error::refused(Step::Plan, problem).hint(Hint::FixPreset))
        }
        many => {
            let seen: Vec<String> = many.iter().map(|d| describe(d)).collect();
            Err(Error::refused(Step::Plan, format!("{} disks match {what}, so the preset does not say which to migrate: {}", many.len(), seen.join("; ")))
                .hint(Hint::Advice { text: "name the disk in the preset's [disk] table by its serial or WWN".into() }))
        }
    }
}

/// What to do about a partition encrypted with `what` (BitLocker, LUKS).
pub fn decrypt_advice(what: &str) -> String {
    crate::inventory::decrypt_advice(what)
}

/// `BitLocker` or `LUKS` when partition `p` is encrypted with it.
pub fn encryption(p: &Partition) -> Option<&'static str> {
    p.encryption()
}

/// An OS on an encrypted partition shows no OS at all: when no disk holds one, say which
/// partitions are encrypted instead of only that no disk matches.
fn locked_system(candidates: &[&Disk]) -> Option<Error> {
    let locked: Vec<(String, &str)> = candidates
        .iter()
        .flat_map(|d| d.partitions.iter().filter_map(move |p| encryption(p).map(|what| (format!("partition {} of {}", p.number, d.name), what))))
        .collect();
    let (_, what) = locked.first()?;
    let list: Vec<String> = locked.iter().map(|(p, w)| format!("{p} is encrypted with {w}")).collect();
    Some(
        Error::refused(Step::Plan, format!("no disk holds an installed OS that inplace can read: {}, and inplace cannot read it", list.join("; ")))
            .advice(decrypt_advice(what)),
    )
}

fn matches(d: &Disk, selector: &DiskSelector) -> bool {
    match selector {
        DiskSelector::Os => d.partitions.iter().any(|p| p.os.is_some()),
        DiskSelector::Match(m) => matches_fields(d, m),
    }
}

fn matches_fields(d: &Disk, m: &DiskMatch) -> bool {
    let same = |want: &Option<String>, have: &Option<String>| match want {
        None => true,
        Some(w) => have.as_deref().is_some_and(|h| h.trim().eq_ignore_ascii_case(w.trim())),
    };
    let model = match &m.model {
        None => true,
        Some(w) => d.model.as_deref().is_some_and(|h| h.to_lowercase().contains(&w.trim().to_lowercase())),
    };
    let size = match m.size.as_deref().map(parse_size) {
        None => true,
        Some(Ok(want)) => (d.size_bytes as f64 - want as f64).abs() <= want as f64 * SIZE_TOLERANCE,
        Some(Err(_)) => false,
    };
    same(&m.serial, &d.serial) && same(&m.wwn, &d.wwn) && model && size
}

fn describe_selector(s: &DiskSelector) -> String {
    match s {
        DiskSelector::Os => "the preset's disk = \"os\" (the one disk holding an installed OS)".into(),
        DiskSelector::Match(m) => {
            let mut parts = Vec::new();
            for (k, v) in [("serial", &m.serial), ("wwn", &m.wwn), ("model", &m.model), ("size", &m.size)] {
                if let Some(v) = v {
                    parts.push(format!("{k} = {v:?}"));
                }
            }
            format!("the preset's [disk] table ({})", parts.join(", "))
        }
    }
}

/// `vda (virtio, 4.0 GiB, model QEMU, serial S1, OS: Debian 12)`.
pub fn describe(d: &Disk) -> String {
    let mut v = vec![d.transport.clone(), human(d.size_bytes)];
    if let Some(m) = &d.model {
        v.push(format!("model {m}"));
    }
    if let Some(s) = &d.serial {
        v.push(format!("serial {s}"));
    }
    let oses: Vec<&str> = d.partitions.iter().filter_map(|p| p.os.as_ref()).map(|o| o.name.as_str()).collect();
    if !oses.is_empty() {
        v.push(format!("OS: {}", oses.join(", ")));
    }
    format!("{} ({})", d.name, v.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Os, Partition};

    fn disk(name: &str, serial: &str, size: u64, os: bool) -> Disk {
        let os = os.then(|| Os { family: "linux".into(), name: "Debian GNU/Linux 12".into(), version: None, users: vec![], ..Os::default() });
        Disk {
            name: name.into(),
            size_bytes: size,
            serial: Some(serial.into()),
            model: Some("QEMU HARDDISK".into()),
            transport: "virtio".into(),
            partitions: vec![Partition { number: 2, os, ..Default::default() }],
            ..Default::default()
        }
    }

    fn by(serial: Option<&str>, size: Option<&str>) -> DiskSelector {
        DiskSelector::Match(DiskMatch { serial: serial.map(Into::into), size: size.map(Into::into), ..Default::default() })
    }

    #[test]
    fn the_os_disk_is_the_default() {
        let disks = [disk("vda", "A", 4 << 30, false), disk("vdb", "B", 8 << 30, true)];
        assert_eq!(select(&disks, &[], &DiskSelector::Os).unwrap().name, "vdb");
    }

    #[test]
    fn two_os_disks_are_ambiguous_and_none_is_an_error() {
        let disks = [disk("vda", "A", 4 << 30, true), disk("vdb", "B", 8 << 30, true)];
        let e = select(&disks, &[], &DiskSelector::Os).unwrap_err();
        assert!(e.problem.starts_with("2 disks match") && e.problem.contains("vda") && e.problem.contains("vdb"), "{e}");
        let disks = [disk("vda", "A", 4 << 30, false)];
        let e = select(&disks, &[], &DiskSelector::Os).unwrap_err();
        assert!(e.problem.contains("no disk matches") && e.problem.contains("vda (virtio"), "{e}");
    }

    #[test]
    fn the_boot_medium_is_never_a_candidate() {
        let disks = [disk("sda", "STICK", 16 << 30, true), disk("vda", "A", 4 << 30, true)];
        assert_eq!(select(&disks, &["sda".into()], &DiskSelector::Os).unwrap().name, "vda");
        let e = select(&disks, &["sda".into()], &by(Some("STICK"), None)).unwrap_err();
        assert!(e.problem.contains("no disk matches"), "{e}");
    }

    #[test]
    fn an_encrypted_system_is_named_when_no_disk_shows_an_os() {
        let mut locked = disk("vda", "A", 4 << 30, false);
        locked.partitions[0].fs = Some("bitlocker".into());
        let e = select(&[locked.clone()], &[], &DiskSelector::Os).unwrap_err();
        assert!(e.problem.contains("partition 2 of vda is encrypted with BitLocker"), "{e}");
        // A disk holding a readable OS is still the one chosen.
        let disks = [locked.clone(), disk("vdb", "B", 4 << 30, true)];
        assert_eq!(select(&disks, &[], &DiskSelector::Os).unwrap().name, "vdb");
        // A selector by serial that matches nothing says just that.
        let e = select(&[locked], &[], &by(Some("Z"), None)).unwrap_err();
        assert!(e.problem.starts_with("no disk matches"), "{e}");
    }

    #[test]
    fn fields_must_all_match() {
        let disks = [disk("vda", "A", 4 << 30, true), disk("vdb", "B", 500_107_862_016, true)];
        assert_eq!(select(&disks, &[], &by(Some("b"), None)).unwrap().name, "vdb");
        assert_eq!(select(&disks, &[], &by(None, Some("466G"))).unwrap().name, "vdb");
        assert!(select(&disks, &[], &by(Some("A"), Some("466G"))).is_err());
        let model = DiskSelector::Match(DiskMatch { model: Some("qemu".into()), ..Default::default() });
        assert!(select(&disks, &[], &model).unwrap_err().problem.starts_with("2 disks"));
    }
}
