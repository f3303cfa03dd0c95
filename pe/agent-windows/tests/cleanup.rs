//! `inplace.exe cleanup` against stand-in volumes (`DirMachine`): on Linux, and under Wine.

use inplace_agent::cleanup::locator::{parse_job_id, volume_head, HEAD_LEN};
use inplace_agent::cleanup::{cleanup, CleanupReport, DirMachine, Request, Status};
use inplace_agent::report::{Report, Status as RestoreStatus};
use std::path::PathBuf;

const JOB: &str = "dad2c558c81849a99001b7402dfeabd1";
const OTHER_JOB: &str = "00112233445566778899aabbccddeeff";

/// `C:\ProgramData\inplace` with a staged folder, and the machine's volumes beside it.
struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    staged: PathBuf,
    machine: DirMachine,
}

impl Fixture {
    /// A job for Carol and Dave with `store_after`.
    fn new(store_after: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("inplace");
        let staged = base.join("staged");
        std::fs::create_dir_all(&staged).unwrap();
        let machine = DirMachine { dir: tmp.path().join("machine") };
        std::fs::create_dir_all(&machine.dir).unwrap();
        let job = serde_json::json!({
            "version": 1, "job_id": JOB, "preset": "refresh", "conflict": "keep-new", "create_users": true,
            "store_after": store_after,
            "users": [{"name": "Carol", "sid": null, "kind": "local"}, {"name": "Dave", "sid": "S-1-5-21-1-2-3-1001", "kind": "domain"}]
        });
        std::fs::write(base.join("job.json"), serde_json::to_vec(&job).unwrap()).unwrap();
        Fixture { _tmp: tmp, base, staged, machine }
    }

    /// Writes `restore-<user>.json` as the agent does.
    fn restored(&self, user: &str, status: RestoreStatus) -> &Self {
        let mut r = Report::new(user, &self.staged.join(user), status);
        r.job_id = Some(JOB.into());
        r.write(&self.base.join(format!("restore-{user}.json"))).unwrap();
        self
    }

    fn all_restored(&self) -> &Self {
        self.restored("Carol", RestoreStatus::Complete).restored("Dave", RestoreStatus::CompleteWithSkips);
        // Dave's skipped files stay staged, with his manifest.
        std::fs::create_dir_all(self.staged.join("Dave/Documents")).unwrap();
        std::fs::write(self.staged.join("Dave.json"), "{}").unwrap();
        self
    }

    /// The store of `job` at `letter` (512-byte sectors).
    fn store(&self, letter: char, job: &str) -> &Self {
        self.machine.add_volume(letter, "INPLACE", "FAT32", &volume_head(parse_job_id(job).unwrap(), 512)).unwrap();
        self
    }

    fn volume(&self, letter: char, label: &str, fs: &str) -> &Self {
        self.machine.add_volume(letter, label, fs, &vec![0u8; HEAD_LEN]).unwrap();
        self
    }

    fn run_with(&self, force: bool, dry_run: bool, task: Option<&str>) -> CleanupReport {
        let job = self.base.join("job.json");
        let log = self.base.join("cleanup.log");
        let req = Request { staged: &self.staged, job: &job, log: &log, force, dry_run, task };
        cleanup(&req, &self.machine)
    }

    fn run(&self) -> CleanupReport {
        self.run_with(false, false, Some("inplace-cleanup"))
    }

    fn commands(&self) -> String {
        std::fs::read_to_string(self.machine.dir.join("commands.log")).unwrap_or_default()
    }

    fn has_volume(&self, letter: char) -> bool {
        self.machine.dir.join("volumes").join(letter.to_string()).exists()
    }
}

fn strings(lines: &[&str]) -> Option<Vec<String>> {
    Some(lines.iter().map(|s| s.to_string()).collect())
}

#[test]
fn waits_for_users_not_restored_and_changes_nothing() {
    let f = Fixture::new("delete");
    f.store('E', JOB).restored("Carol", RestoreStatus::Incomplete);
    let r = f.run();
    assert_eq!(r.status, Status::Waiting, "{r:#?}");
    assert_eq!(r.status.exit_code(), 4);
    let pending: Vec<(&str, &str)> = r.pending.iter().map(|w| (w.user.as_str(), w.why.as_str())).collect();
    assert_eq!(pending, [("Carol", "restore incomplete: incomplete"), ("Dave", "never logged on")]);
    assert!(r.message.contains("Carol") && r.message.contains("Dave"), "{}", r.message);
    assert_eq!((r.store_volume, r.script, r.output), (None, None, None));
    assert_eq!(f.commands(), "", "neither diskpart nor schtasks ran");
    assert!(f.has_volume('E') && f.staged.exists());
}

#[test]
fn delete_runs_the_script_extends_c_and_ends_the_task() {
    let f = Fixture::new("delete");
    f.restored("Carol", RestoreStatus::Complete).restored("Dave", RestoreStatus::Complete);
    f.store('E', JOB).volume('D', "DVD", "CDFS").volume('F', "Backup", "NTFS");
    let r = f.run();
    assert_eq!(r.status, Status::Deleted, "{r:#?}");
    assert_eq!(r.status.exit_code(), 0);
    assert_eq!(r.job_id.as_deref(), Some(JOB));
    assert_eq!(r.store_volume.as_deref(), Some("E:"));
    assert_eq!(r.script, strings(&["select volume E", "delete volume", "select volume C", "extend", "exit"]));
    assert!(r.output.as_deref().unwrap().contains("extend: done"), "{r:?}");
    assert!(!f.has_volume('E'), "the stand-in diskpart deleted the store");
    assert!(f.has_volume('F'));
    assert!(!f.staged.exists(), "the emptied staged folder is removed");
    let commands = f.commands();
    assert!(commands.contains("diskpart /s "), "{commands}");
    assert!(commands.ends_with("schtasks /delete /tn inplace-cleanup /f\n"), "{commands}");
    let log = std::fs::read_to_string(f.base.join("cleanup.log")).unwrap();
    assert!(log.contains("delete volume") && log.contains("extend: done") && log.contains("stand-in schtasks"), "{log}");
    assert!(!f.base.join("cleanup-diskpart.txt").exists(), "the script file is removed");
}

#[test]
fn empty_formats_the_store_as_a_data_drive() {
    let f = Fixture::new("empty");
    f.all_restored().store('G', JOB);
    std::fs::write(f.machine.dir.join("system-drive"), "D").unwrap();
    let r = f.run();
    assert_eq!(r.status, Status::Emptied, "{r:#?}");
    assert_eq!(r.script, strings(&["select volume G", "format fs=ntfs quick label=\"Data\"", "exit"]));
    assert_eq!(std::fs::read_to_string(f.machine.dir.join("volumes/G/label")).unwrap(), "Data");
    assert!(f.staged.join("Dave.json").exists(), "Dave's skipped files stay staged");
    assert!(f.commands().contains("schtasks /delete"));
}

#[test]
fn extend_failing_leaves_the_store_deleted_and_says_so() {
    let f = Fixture::new("delete");
    f.all_restored().store('E', JOB);
    std::fs::write(f.machine.dir.join("diskpart.fail-at"), "extend").unwrap();
    let r = f.run();
    assert_eq!(r.status, Status::DeletedNotExtended, "{r:#?}");
    assert_eq!(r.status.exit_code(), 1);
    assert!(r.message.contains("was deleted but C: was not extended"), "{}", r.message);
    assert!(!f.has_volume('E'));
    assert!(f.commands().contains("schtasks /delete"), "the store is gone: running again cannot help");
}

#[test]
fn diskpart_failing_before_the_delete_keeps_the_task() {
    let f = Fixture::new("delete");
    f.all_restored().store('E', JOB);
    std::fs::write(f.machine.dir.join("diskpart.fail-at"), "delete volume").unwrap();
    let r = f.run();
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert!(r.message.contains("is still there"), "{}", r.message);
    assert!(f.has_volume('E'));
    assert!(!f.commands().contains("schtasks"), "the task runs again at the next start");
}

#[test]
fn dry_run_prints_the_script_and_runs_nothing() {
    let f = Fixture::new("delete");
    f.all_restored().store('E', JOB);
    let r = f.run_with(false, true, Some("inplace-cleanup"));
    assert_eq!(r.status, Status::DryRun, "{r:#?}");
    assert_eq!(r.status.exit_code(), 0);
    assert_eq!(r.store_volume.as_deref(), Some("E:"));
    assert_eq!(r.script, strings(&["select volume E", "delete volume", "select volume C", "extend", "exit"]));
    assert_eq!(r.output, None);
    assert_eq!(f.commands(), "");
    assert!(f.has_volume('E') && f.staged.exists());
}

#[test]
fn finds_a_store_with_4096_byte_sectors() {
    let f = Fixture::new("delete");
    f.all_restored();
    f.machine.add_volume('E', "inplace", "FAT32", &volume_head(parse_job_id(JOB).unwrap(), 4096)).unwrap();
    let r = f.run_with(false, true, None);
    assert_eq!((r.status, r.store_volume.as_deref()), (Status::DryRun, Some("E:")), "{r:#?}");
}

#[test]
fn no_store_fails_and_changes_nothing() {
    let f = Fixture::new("delete");
    f.all_restored().volume('D', "Data", "NTFS");
    let r = f.run();
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert_eq!(r.status.exit_code(), 1);
    assert!(r.message.contains(&format!("no store of job {JOB} was found")), "{}", r.message);
    assert!(r.message.contains("nothing was changed"), "{}", r.message);
    assert!(r.message.contains("Disk Management") && r.message.contains("inplace.exe cleanup --staged"), "{}", r.message);
    assert_eq!((r.store_volume, r.script), (None, None));
    assert_eq!(f.commands(), "", "the task stays: it runs again at the next start");
}

#[test]
fn a_store_of_another_job_or_without_locator_or_not_fat32_does_not_count() {
    let f = Fixture::new("delete");
    f.all_restored().store('E', OTHER_JOB).volume('F', "INPLACE", "FAT32").volume('G', "INPLACE", "NTFS");
    let r = f.run();
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert!(r.message.contains("E: holds the store of another job"), "{}", r.message);
    assert!(r.message.contains("F: is labelled INPLACE but holds no store locator"), "{}", r.message);
    assert!(r.message.contains("G: is labelled INPLACE but is NTFS"), "{}", r.message);
    assert_eq!(f.commands(), "");
    assert!(f.has_volume('E') && f.has_volume('F') && f.has_volume('G'));
}

#[test]
fn a_locator_without_the_label_does_not_count() {
    let f = Fixture::new("delete");
    f.all_restored();
    f.machine.add_volume('E', "DATA", "FAT32", &volume_head(parse_job_id(JOB).unwrap(), 512)).unwrap();
    let r = f.run();
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert!(r.message.contains("no volume labelled INPLACE (FAT32) has a drive letter"), "{}", r.message);
}

#[test]
fn two_stores_of_the_job_are_refused() {
    let f = Fixture::new("delete");
    f.all_restored().store('E', JOB).store('F', JOB);
    let r = f.run();
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert!(r.message.contains("more than one volume holds a store of job") && r.message.contains("E:, F:"), "{}", r.message);
    assert_eq!(r.store_volume, None);
    assert_eq!(f.commands(), "");
    assert!(f.has_volume('E') && f.has_volume('F'));
}

#[test]
fn force_goes_on_without_waiting_users_and_names_them() {
    let f = Fixture::new("delete");
    f.restored("Carol", RestoreStatus::Complete).store('E', JOB);
    std::fs::write(f.staged.join("Dave.json"), "{}").unwrap();
    let r = f.run_with(true, false, None);
    assert_eq!(r.status, Status::Deleted, "{r:#?}");
    assert_eq!(r.pending.len(), 1);
    assert_eq!(r.pending[0].user, "Dave");
    assert!(r.message.contains("forced, without Dave (never logged on)"), "{}", r.message);
    assert!(f.staged.exists(), "a staged folder that is not empty stays");
    assert!(!f.commands().contains("schtasks"), "no --task: no schtasks");
}

#[test]
fn keep_touches_no_disk_and_ends_the_task() {
    let f = Fixture::new("keep");
    f.restored("Carol", RestoreStatus::Complete).restored("Dave", RestoreStatus::Complete).store('E', JOB);
    let r = f.run();
    assert_eq!(r.status, Status::Kept, "{r:#?}");
    assert_eq!((r.store_volume, r.script, r.output), (None, None, None));
    assert_eq!(f.commands(), "schtasks /delete /tn inplace-cleanup /f\n");
    assert!(!f.staged.exists());
    assert!(f.has_volume('E'));
}

#[test]
fn store_after_defaults_to_keep_and_unknown_fields_are_ignored() {
    let f = Fixture::new("keep");
    f.restored("Carol", RestoreStatus::Complete).restored("Dave", RestoreStatus::Complete);
    let job = serde_json::json!({"version": 1, "job_id": JOB, "new_field": [1, 2], "users": [{"name": "Carol"}, {"name": "Dave"}]});
    std::fs::write(f.base.join("job.json"), serde_json::to_vec(&job).unwrap()).unwrap();
    let r = f.run_with(false, false, None);
    assert_eq!(r.status, Status::Kept, "{r:#?}");
    assert_eq!(r.store_after, Some(inplace_agent::job::StoreAfter::Keep));
}

#[test]
fn an_unreadable_job_fails_and_changes_nothing() {
    let f = Fixture::new("delete");
    f.all_restored().store('E', JOB);
    std::fs::write(f.base.join("job.json"), "{not json").unwrap();
    let r = f.run();
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert!(r.message.contains("not a valid job") && r.message.contains("nothing was changed"), "{}", r.message);
    assert_eq!(f.commands(), "");
}
