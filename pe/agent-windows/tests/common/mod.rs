//! A staged folder built like the PE builds it, for the agent's tests.
#![allow(dead_code)]

pub mod collector;

use inplace_agent::folders::{Folders, RootFolders};
use inplace_agent::hash::hex;
use inplace_agent::job::{Conflict, Job};
use inplace_agent::manifest::{Entry, Kind, Manifest};
use inplace_agent::report::Report;
use inplace_agent::restore::{restore, Request};
use inplace_agent::times;
use inplace_agent::transfer::Strategy;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// `C:\ProgramData\inplace` in a temporary folder, with a profile root beside it.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub staged: PathBuf,
    pub profile: PathBuf,
    pub user: String,
    pub conflict: Conflict,
    pub entries: Vec<Entry>,
}

/// A fixed time (2021-…, a multiple of 100 ns: Windows keeps 100 ns ticks), plus `n` seconds.
pub fn t(n: i64) -> i64 {
    1_620_000_000_123_456_700 + n * 1_000_000_000
}

pub fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn mtime_ns(p: &Path) -> i64 {
    times::to_ns(std::fs::metadata(p).unwrap().modified().unwrap())
}

impl Fixture {
    pub fn new(user: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("inplace");
        let staged = base.join("staged");
        let profile = tmp.path().join("Users").join(user);
        std::fs::create_dir_all(staged.join(user)).unwrap();
        std::fs::create_dir_all(&profile).unwrap();
        Fixture { tmp, base, staged, profile, user: user.into(), conflict: Conflict::KeepNew, entries: Vec::new() }
    }

    /// The staged object of a manifest path.
    pub fn staged_path(&self, path: &str) -> PathBuf {
        path.split('/').fold(self.staged.join(&self.user), |p, c| p.join(c))
    }

    /// Under the profile root, '/'-separated.
    pub fn at(&self, path: &str) -> PathBuf {
        path.split('/').fold(self.profile.clone(), |p, c| p.join(c))
    }

    /// Stages a file (its parent folders too) and lists it.
    pub fn file(&mut self, path: &str, bytes: &[u8], mtime: i64) -> &mut Self {
        let p = self.staged_path(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        std::fs::File::options().write(true).open(&p).unwrap().set_modified(times::from_ns(mtime)).unwrap();
        self.entries.push(Entry {
            path: path.into(),
            kind: Kind::File,
            size: Some(bytes.len() as u64),
            sha256: Some(sha(bytes)),
            mtime_ns: Some(mtime),
            created_ns: None,
        });
        self
    }

    /// Stages a folder and lists it.
    pub fn dir(&mut self, path: &str, mtime: i64) -> &mut Self {
        std::fs::create_dir_all(self.staged_path(path)).unwrap();
        self.entries.push(Entry { path: path.into(), kind: Kind::Dir, size: None, sha256: None, mtime_ns: Some(mtime), created_ns: None });
        self
    }

    /// Lists an entry without staging anything (hostile manifests).
    pub fn raw(&mut self, path: &str, bytes: &[u8]) -> &mut Self {
        self.entries.push(Entry { path: path.into(), kind: Kind::File, size: Some(bytes.len() as u64), sha256: Some(sha(bytes)), mtime_ns: Some(t(0)), created_ns: None });
        self
    }

    /// A file the new OS already has, '/'-separated under the profile root.
    pub fn existing(&self, path: &str, bytes: &[u8]) -> PathBuf {
        let p = self.at(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn job(&self) -> Job {
        serde_json::from_value(serde_json::json!({
            "version": 1, "job_id": "job-1", "conflict": self.conflict,
            "users": [{"name": self.user, "sid": null}]
        }))
        .unwrap()
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.staged.join(format!("{}.json", self.user))
    }

    /// Writes job.json and the manifest.
    pub fn write(&self) {
        let m = Manifest { version: 1, user: self.user.clone(), entries: self.entries.clone() };
        std::fs::write(self.manifest_path(), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        std::fs::write(self.base.join("job.json"), serde_json::to_vec(&self.job()).unwrap()).unwrap();
    }

    /// Writes the files and runs the restore through the library.
    pub fn run_with(&self, strategy: Strategy) -> Report {
        self.write();
        let folders = RootFolders { root: self.profile.clone() };
        self.run_in(&folders, strategy)
    }

    pub fn run_in(&self, folders: &dyn Folders, strategy: Strategy) -> Report {
        let req = Request { staged: &self.staged, user: &self.user, job: Ok(self.job()), folders, strategy };
        restore(&req)
    }

    pub fn run(&self) -> Report {
        self.run_with(Strategy::RenameOrCopy)
    }

    /// Runs the binary; returns (exit code, stdout).
    pub fn run_bin(&self, extra: &[&str]) -> (i32, String) {
        self.write();
        self.exec_bin(extra)
    }

    /// Runs the binary on the staged folder as it is now.
    pub fn exec_bin(&self, extra: &[&str]) -> (i32, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_inplace-agent"))
            .arg("restore")
            .arg("--staged")
            .arg(&self.staged)
            .arg("--user")
            .arg(&self.user)
            .arg("--profile-root")
            .arg(&self.profile)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The report the binary wrote at its default place.
    pub fn report_file(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.base.join(format!("restore-{}.json", self.user))).unwrap()).unwrap()
    }

    /// Every file and folder under the profile root, '/'-separated, sorted.
    pub fn profile_tree(&self) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let name = format!("{prefix}{}", e.file_name().to_string_lossy());
                out.push(name.clone());
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), &format!("{name}/"), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.profile, "", &mut out);
        out.sort();
        out
    }
}

/// Asserts a file's bytes, sha256 and modified time.
pub fn assert_file(p: &Path, bytes: &[u8], mtime: i64) {
    let got = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(sha(&got), sha(bytes), "{}", p.display());
    assert_eq!(got, bytes, "{}", p.display());
    assert_eq!(mtime_ns(p), mtime, "mtime of {}", p.display());
}
