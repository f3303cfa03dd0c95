//! `inplace.exe report`: the users whose staged copy is still there.

use crate::manifest::{Kind, Manifest};
use crate::report::Report;
use serde::Serialize;
use std::path::Path;

/// One user still staged.
#[derive(Debug, Serialize)]
pub struct PendingUser {
    pub user: String,
    pub manifest: String,
    /// `never-logged-on` (no report yet), or the status of the last restore.
    pub state: String,
    pub files: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// The answer of `report`.
#[derive(Debug, Serialize)]
pub struct Pending {
    pub version: u32,
    pub staged: String,
    pub users: Vec<PendingUser>,
}

/// The default report path of a user: `<staged>\..\restore-<user>.json`.
pub fn default_report_path(staged: &Path, user: &str) -> std::path::PathBuf {
    let parent = staged.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join(format!("restore-{user}.json"))
}

/// Lists the manifests in `staged` (each a user whose restore has not completed).
pub fn pending(staged: &Path) -> std::io::Result<Pending> {
    let mut users = Vec::new();
    for e in std::fs::read_dir(staged)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(user) = name.strip_suffix(".json") else { continue };
        let (files, bytes, state) = match Manifest::load(&e.path()) {
            Ok(m) => {
                let files = m.entries.iter().filter(|x| x.kind == Kind::File);
                (files.clone().count() as u64, files.filter_map(|x| x.size).sum(), None)
            }
            Err(r) => (0, 0, Some(format!("unreadable manifest: {r}"))),
        };
        let report_path = default_report_path(staged, user);
        let last: Option<Report> = std::fs::read(&report_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let state = state.unwrap_or_else(|| match last.as_ref().map(|r| r.status) {
            None => "never-logged-on".into(),
            Some(s) => serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        });
        let report = last.is_some().then(|| report_path.display().to_string());
        users.push(PendingUser { user: user.to_string(), manifest: e.path().display().to_string(), state, files, bytes, report });
    }
    users.sort_by(|a, b| a.user.cmp(&b.user));
    Ok(Pending { version: 1, staged: staged.display().to_string(), users })
}
