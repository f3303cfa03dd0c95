//! Run reports on the stick: every run leaves `reports/<machine-id>-<time>/` on the `INPLACE`
//! partition, so one stick collects the results of every machine it touched.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

/// A stable name for this machine: the DMI product UUID, else the first NIC's MAC, else
/// `unknown`. Only characters FAT accepts.
pub fn machine_id(sys: &Path) -> String {
    let uuid = std::fs::read_to_string(sys.join("class/dmi/id/product_uuid")).unwrap_or_default();
    let uuid = uuid.trim();
    if !uuid.is_empty() && uuid.chars().any(|c| c.is_ascii_hexdigit() && c != '0') {
        return sanitize(uuid);
    }
    let mut nics: Vec<_> = std::fs::read_dir(sys.join("class/net"))
        .map(|it| it.flatten().map(|e| e.path()).filter(|p| !p.ends_with("lo")).collect())
        .unwrap_or_default();
    nics.sort();
    nics.iter()
        .filter_map(|p| std::fs::read_to_string(p.join("address")).ok())
        .map(|m| m.trim().replace(':', ""))
        .find(|m| !m.is_empty() && m.chars().any(|c| c != '0'))
        .unwrap_or_else(|| "unknown".into())
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// `<machine-id>-20261122T012233Z`.
pub fn folder_name(machine_id: &str, at: SystemTime) -> String {
    let t = humantime::format_rfc3339_seconds(at).to_string();
    format!("{machine_id}-{}", t.replace(['-', ':'], ""))
}

/// Report folders already on the stick, sorted.
pub fn earlier(config_root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(config_root.join("reports"))
        .map(|it| it.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes `files` into a new report folder and flushes them to the stick.
pub fn write(config_root: &Path, folder: &str, files: &[(&str, &[u8])]) -> anyhow::Result<PathBuf> {
    let dir = config_root.join("reports").join(folder);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, data) in files {
        std::fs::write(dir.join(name), data).with_context(|| format!("writing {}/{name}", dir.display()))?;
    }
    rustix::fs::sync();
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn folder_names_sort_by_time_and_suit_fat() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_310_553);
        assert_eq!(folder_name("abc", at), "abc-20261122T012233Z");
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("class/dmi/id")).unwrap();
        std::fs::write(d.path().join("class/dmi/id/product_uuid"), "4C4C4544-0042:XY\n").unwrap();
        assert_eq!(machine_id(d.path()), "4c4c4544-0042_xy");
    }

    #[test]
    fn reports_accumulate() {
        let d = tempfile::tempdir().unwrap();
        assert!(earlier(d.path()).is_empty());
        write(d.path(), "m-1", &[("report.json", b"{}")]).unwrap();
        write(d.path(), "m-2", &[("report.json", b"{}")]).unwrap();
        assert_eq!(earlier(d.path()), ["m-1", "m-2"]);
    }
}
