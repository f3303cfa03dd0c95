//! Is every user restored? Read from the files the agent leaves: each user's
//! `restore-<user>.json` and whether `staged\<user>.json` is still there.

use crate::job::Job;
use crate::pending::default_report_path;
use crate::report::{Report, Status};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A user cleanup waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub user: String,
    /// `never logged on`, or `restore incomplete: <status>`, or why the report does not count.
    pub why: String,
}

fn status_name(s: Status) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Why `user` is not restored yet, or `None` when they are: their report says `complete`
/// (and their manifest is gone, as a complete restore removes it) or `complete-with-skips`
/// (the skipped files stay staged with their manifest, on C:, which cleanup does not touch).
/// `nothing-staged` with no manifest counts too: the restore was run again after it completed.
fn why_waiting(staged: &Path, job: &Job, user: &str) -> Option<String> {
    let report_path = default_report_path(staged, user);
    let Ok(bytes) = std::fs::read(&report_path) else { return Some("never logged on".into()) };
    let report: Report = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return Some(format!("restore report {} unreadable: {e}", report_path.display())),
    };
    if report.job_id.as_deref().is_some_and(|id| !id.eq_ignore_ascii_case(&job.job_id)) {
        return Some(format!("restore report is of another job ({})", report.job_id.unwrap_or_default()));
    }
    let manifest = staged.join(format!("{user}.json"));
    match report.status {
        Status::CompleteWithSkips => None,
        Status::Complete | Status::NothingStaged if !manifest.exists() => None,
        Status::Complete => Some(format!("restore complete but {} is still there", manifest.display())),
        other => Some(format!("restore incomplete: {}", status_name(other))),
    }
}

/// The users of the job that are not restored yet, in the job's order.
pub fn waiting(staged: &Path, job: &Job) -> Vec<Waiting> {
    job.users
        .iter()
        .filter_map(|u| why_waiting(staged, job, &u.name).map(|why| Waiting { user: u.name.clone(), why }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        serde_json::from_str(
            r#"{"version":1,"job_id":"j1","users":[{"name":"Carol","sid":null},{"name":"Dave","sid":null},{"name":"Erin"}]}"#,
        )
        .unwrap()
    }

    fn report(base: &Path, user: &str, status: Status, job_id: &str) {
        let mut r = Report::new(user, &base.join("staged").join(user), status);
        r.job_id = Some(job_id.into());
        r.write(&base.join(format!("restore-{user}.json"))).unwrap();
    }

    #[test]
    fn names_each_user_not_restored_and_why() {
        let tmp = tempfile::tempdir().unwrap();
        let staged = tmp.path().join("staged");
        std::fs::create_dir_all(&staged).unwrap();
        report(tmp.path(), "Carol", Status::Complete, "j1");
        report(tmp.path(), "Dave", Status::Incomplete, "j1");
        let w = waiting(&staged, &job());
        assert_eq!(
            w,
            [
                Waiting { user: "Dave".into(), why: "restore incomplete: incomplete".into() },
                Waiting { user: "Erin".into(), why: "never logged on".into() },
            ]
        );
    }

    #[test]
    fn ready_when_complete_or_complete_with_skips() {
        let tmp = tempfile::tempdir().unwrap();
        let staged = tmp.path().join("staged");
        std::fs::create_dir_all(&staged).unwrap();
        report(tmp.path(), "Carol", Status::Complete, "j1");
        report(tmp.path(), "Dave", Status::CompleteWithSkips, "J1");
        std::fs::write(staged.join("Dave.json"), "{}").unwrap();
        report(tmp.path(), "Erin", Status::Complete, "j1");
        assert!(waiting(&staged, &job()).is_empty());
    }

    #[test]
    fn a_leftover_manifest_or_another_jobs_report_does_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let staged = tmp.path().join("staged");
        std::fs::create_dir_all(&staged).unwrap();
        report(tmp.path(), "Carol", Status::Complete, "j1");
        std::fs::write(staged.join("Carol.json"), "{}").unwrap();
        report(tmp.path(), "Dave", Status::Complete, "j0");
        report(tmp.path(), "Erin", Status::Refused, "j1");
        let w = waiting(&staged, &job());
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].why.contains("still there"), "{w:?}");
        assert!(w[1].why.contains("another job"), "{w:?}");
        assert_eq!(w[2].why, "restore incomplete: refused");
    }
}
