//! Windows on NTFS: `\Windows\System32` marks it; profiles are the directories under
//! `\Users`; a hibernation file with a live header means the volume is not safe to read.

use super::Detection;
use crate::fs::{read_head, EntryKind, FsReader};
use super::Os;

/// Profile directories that are not people.
const NOT_PEOPLE: [&str; 4] = ["Public", "Default", "Default User", "All Users"];

pub fn detect(fs: &mut dyn FsReader) -> Detection {
    if !fs.is_dir(b"/Windows/System32") {
        return Detection::default();
    }
    let mut warnings = Vec::new();
    let users = match fs.read_dir(b"/Users") {
        Ok(entries) => profile_names(entries.into_iter().filter(|e| e.kind == EntryKind::Dir).map(|e| e.name.lossy().into_owned())),
        Err(e) => {
            warnings.push(format!("cannot list the user profiles: {e}"));
            Vec::new()
        }
    };
    if let Some(w) = hibernation(fs) {
        warnings.push(w);
    }
    Detection { os: Some(Os { family: "windows".into(), name: "Windows".into(), version: None, users }), warnings }
}

/// Directory names under `\Users` that are people, in directory order.
pub fn profile_names(dirs: impl Iterator<Item = String>) -> Vec<String> {
    dirs.filter(|n| !NOT_PEOPLE.iter().any(|x| x.eq_ignore_ascii_case(n))).collect()
}

/// A warning when `\hiberfil.sys` holds a hibernation image (`HIBR`, `WAKE`, `RSTR`).
fn hibernation(fs: &mut dyn FsReader) -> Option<String> {
    let head = read_head(fs, b"/hiberfil.sys", 4).ok()?;
    let magic = String::from_utf8_lossy(&head).to_ascii_uppercase();
    matches!(magic.as_str(), "HIBR" | "WAKE" | "RSTR").then(|| {
        format!(
            "Windows is hibernated or was shut down with Fast Startup (hiberfil.sys header \
             {magic:?}); files on this volume may be out of date — boot Windows and shut it \
             down fully (`shutdown /s /t 0`, or turn off Fast Startup) before migrating"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_exclude_system_dirs() {
        let names = ["Carol", "Public", "default", "Dave", "All Users", "Default User"].map(String::from);
        assert_eq!(profile_names(names.into_iter()), vec!["Carol", "Dave"]);
    }
}
