//! Test images made by the real tools in temporary directories: `mkntfs` + an ntfs-3g mount
//! (foreground, `no_detach`, so unmounting waits for every write), `mkfs.ext4 -d`, `mkfs.fat` +
//! `mcopy`. Only image files are ever written; the tools must be installed (Debian: ntfs-3g,
//! attr, e2fsprogs, dosfstools, mtools), and the NTFS ones need FUSE (`/dev/fuse`).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::range::RangeReader;
use super::FsReader;
use crate::disk::device::Device;

/// Runs a command to completion; panics with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; is the tool installed?"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sparse file of `size` bytes.
pub fn sparse_file(path: &Path, size: u64) {
    let f = fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    f.set_len(size).unwrap();
}

/// A fresh NTFS image (quick format) of `size` bytes at `path`.
pub fn mkntfs(path: &Path, size: u64, label: &str) {
    sparse_file(path, size);
    run(Command::new("mkntfs").args(["-F", "-f", "-Q", "-L", label]).arg(path));
}

/// An ext4 image of `size` bytes at `path` holding the tree `from` (`mkfs.ext4 -d`, which keeps
/// owners, modes, times, symlinks and hard links).
pub fn mkext4(path: &Path, size: u64, from: &Path, label: &str) {
    sparse_file(path, size);
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-L", label, "-d"]).arg(from).arg(path));
}

/// A FAT32 image of `size` bytes at `path`.
pub fn mkfat(path: &Path, size: u64, label: &str) {
    sparse_file(path, size);
    run(Command::new("mkfs.fat").args(["-F", "32", "-n", label]).arg(path));
}

/// Opens image `path` read-only with the reader for `fs`.
pub fn open(path: &Path, fs: &str) -> Box<dyn FsReader> {
    let dev = Device::open(path).unwrap_or_else(|e| panic!("{e}"));
    let range = RangeReader::whole(Arc::new(dev));
    super::open(fs, range).expect("a reader for the type").unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// An ntfs-3g mount run in the foreground (`no_detach`), so unmounting can wait until every
/// write has reached the image. Dropping it without [`NtfsMount::unmount`] unmounts and kills.
pub struct NtfsMount {
    child: Option<Child>,
    dir: PathBuf,
}

impl NtfsMount {
    /// Mounts `image` on `dir` (created if missing), with extra ntfs-3g options `opts`.
    pub fn mount(image: &Path, dir: &Path, opts: &str) -> NtfsMount {
        fs::create_dir_all(dir).unwrap();
        let opts = if opts.is_empty() { "no_detach".to_string() } else { format!("no_detach,{opts}") };
        let child = Command::new("ntfs-3g")
            .args(["-o", &opts])
            .arg(image)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ntfs-3g: {e}; install ntfs-3g (and FUSE)"));
        let mut m = NtfsMount { child: Some(child), dir: dir.to_path_buf() };
        let canonical = fs::canonicalize(dir).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            if mounts.lines().any(|l| l.split(' ').nth(4) == canonical.to_str()) {
                return m;
            }
            if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let mut err = String::new();
                if let Some(mut e) = m.child.take().and_then(|mut c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("ntfs-3g {} {} exited ({status}) before mounting:\n{err}", image.display(), dir.display());
            }
            assert!(Instant::now() < deadline, "ntfs-3g did not mount {} within 10 s", dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Unmounts and waits for ntfs-3g to exit (it flushes everything first).
    pub fn unmount(mut self) {
        let out = Command::new("fusermount").arg("-u").arg(&self.dir).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            let _ = Command::new("umount").arg(&self.dir).status();
        }
        if let Some(mut child) = self.child.take() {
            let status = child.wait().expect("waiting for ntfs-3g");
            assert!(status.success(), "ntfs-3g exited with {status}; fusermount said {out:?}");
        }
    }
}

impl Drop for NtfsMount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("fusermount").arg("-u").arg(&self.dir).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `setfattr -n NAME -v VALUE PATH`.
pub fn setfattr(path: &Path, name: &str, value: &str) {
    run(Command::new("setfattr").args(["-n", name, "-v", value]).arg(path));
}

/// The value of extended attribute `name` of `path` as `getfattr -e hex` prints it (`0x…`).
pub fn getfattr_hex(path: &Path, name: &str) -> String {
    let out = run(Command::new("getfattr").args(["--absolute-names", "-e", "hex", "-n", name]).arg(path));
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("getfattr {name} {}: {out}", path.display()))
        .to_string()
}

/// A reparse buffer for a junction (mount point) to `target` (a Windows path such as
/// `C:\Users\Public`), as hex for `setfattr -n system.ntfs_reparse_data`.
pub fn junction_reparse_hex(target: &str) -> String {
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let subst = utf16(&format!(r"\??\{target}"));
    let print = utf16(target);
    let mut data = Vec::new();
    for v in [0, subst.len(), subst.len() + 2, print.len()] {
        data.extend_from_slice(&(v as u16).to_le_bytes());
    }
    data.extend_from_slice(&subst);
    data.extend_from_slice(&[0, 0]);
    data.extend_from_slice(&print);
    data.extend_from_slice(&[0, 0]);
    reparse_hex(0xA000_0003, &data)
}

/// A reparse buffer with tag `tag` and `data`, as hex for `setfattr`.
pub fn reparse_hex(tag: u32, data: &[u8]) -> String {
    let mut buf = tag.to_le_bytes().to_vec();
    buf.extend_from_slice(&(data.len() as u16).to_le_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(data);
    format!("0x{}", buf.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Hex sha256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// A `Write` that hashes what it gets and keeps its length.
#[derive(Default)]
pub struct HashSink {
    hash: Sha256,
    pub len: u64,
}

impl HashSink {
    pub fn hex(self) -> String {
        format!("{:x}", self.hash.finalize())
    }
}

impl Write for HashSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hash.update(data);
        self.len += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Deterministic pseudo-random (incompressible) bytes.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
