//! Filesystems resized by their own tools: e2fsprogs (`e2fsck -f`, then `resize2fs`) for
//! ext2/3/4 and ntfs-3g (`ntfsresize`, then `ntfsfix -d`) for NTFS. [`grow`] makes a filesystem
//! fill its block device (at lay-down); [`shrink_to_minimum`] makes one as small as its tool
//! allows (a copy, at create). FAT is left at its size. Nothing here writes a filesystem itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::disk::device::{Device, SharedDisk};
use crate::fs::alloc;
use crate::fs::range::RangeReader;

/// Why a filesystem could not be resized: the tool's words, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResizeError(pub String);

impl From<String> for ResizeError {
    fn from(s: String) -> Self {
        ResizeError(s)
    }
}

impl From<&str> for ResizeError {
    fn from(s: &str) -> Self {
        ResizeError(s.to_string())
    }
}

/// Where the tools are looked for (the PE's initramfs has them in `/usr/sbin`).
const DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// One filesystem resized: figures for the journal, the report and the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resized {
    /// The partition's number on the target.
    pub number: u32,
    pub fs: String,
    /// The filesystem's bytes before and after.
    pub before: u64,
    pub after: u64,
    pub secs: f64,
}

impl Resized {
    /// One line for a log or a report.
    pub fn line(&self) -> String {
        let verb = if self.after >= self.before { "grown" } else { "shrunk" };
        format!(
            "partition {}: {} {verb} from {} to {} in {:.2} s",
            self.number,
            self.fs,
            crate::units::human(self.before),
            crate::units::human(self.after),
            self.secs
        )
    }
}

/// Whether [`grow`] and [`shrink_to_minimum`] handle `fs`.
pub fn resizable(fs: Option<&str>) -> bool {
    matches!(fs, Some("ext2" | "ext3" | "ext4" | "ntfs"))
}

/// The tool `name`, from the PE's or the system's directories.
fn tool(name: &str) -> Result<PathBuf, String> {
    DIRS.iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file()).ok_or_else(|| {
        format!("{name} is not installed (looked in {}); install e2fsprogs and ntfs-3g (scripts/setup does)", DIRS.join(", "))
    })
}

/// The tool `name` to run, in the C locale.
fn cmd(name: &str) -> Result<Command, String> {
    let mut c = Command::new(tool(name)?);
    c.env("LC_ALL", "C");
    Ok(c)
}

/// Runs `c` and returns its output; an exit code outside `ok` is an error with the tool's last
/// lines.
fn run(c: &mut Command, ok: &[i32]) -> Result<String, String> {
    let name = Path::new(c.get_program()).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let (code, text) = crate::command::output(c).map_err(|e| format!("cannot run {name}: {e}"))?;
    match code {
        Some(c) if ok.contains(&c) => Ok(text),
        code => {
            let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = tail[tail.len().saturating_sub(4)..].join(" / ");
            Err(format!("{name} {} failed ({}): {tail}", args.join(" "), code.map_or("killed".to_string(), |c| format!("exit {c}"))))
        }
    }
}

/// e2fsck's exit codes 0 (clean) and 1 (fixed) let the resize go on.
fn check_ext(node: &str) -> Result<(), String> {
    run(cmd("e2fsck")?.args(["-f", "-p", node]), &[0, 1]).map(|_| ())
}

/// Makes the filesystem on `node` fill it. Returns its bytes before and after.
pub fn grow(node: &Path, fs: &str) -> Result<(u64, u64), ResizeError> {
    let before = fs_bytes(node, fs)?;
    let n = node.to_str().ok_or("the device path is not UTF-8")?;
    match fs {
        "ext2" | "ext3" | "ext4" => {
            check_ext(n)?;
            run(cmd("resize2fs")?.arg(n), &[0])?;
        }
        "ntfs" => {
            run(cmd("ntfsresize")?.args(["--force", "--no-progress-bar", n]), &[0])?;
            // ntfsresize schedules a chkdsk (the dirty flag); its own check ran before the resize.
            run(cmd("ntfsfix")?.args(["-d", n]), &[0])?;
        }
        other => return Err(format!("{other} is not grown (only ext2/3/4 and NTFS are)").into()),
    }
    Ok((before, fs_bytes(node, fs)?))
}

/// Shrinks the filesystem on `node` (a copy) to the smallest size its tool allows. Returns its
/// bytes before and after.
pub fn shrink_to_minimum(node: &Path, fs: &str) -> Result<(u64, u64), ResizeError> {
    let before = fs_bytes(node, fs)?;
    let n = node.to_str().ok_or("the file path is not UTF-8")?;
    match fs {
        "ext2" | "ext3" | "ext4" => {
            check_ext(n)?;
            run(cmd("resize2fs")?.args(["-M", n]), &[0])?;
            check_ext(n)?;
        }
        "ntfs" => {
            let info = run(cmd("ntfsresize")?.args(["--info", "--force", "--no-progress-bar", n]), &[0])?;
            let min = ntfs_minimum(&info).ok_or_else(|| format!("ntfsresize did not report how small {n} can be"))?;
            if min < before {
                let size = min.to_string();
                run(cmd("ntfsresize")?.args(["--force", "--force", "--no-progress-bar", "--size", &size, n]), &[0])?;
                run(cmd("ntfsfix")?.args(["-d", n]), &[0])?;
            }
        }
        other => return Err(format!("{other} cannot be shrunk (only ext2/3/4 and NTFS can)").into()),
    }
    Ok((before, fs_bytes(node, fs)?))
}

/// The bytes in "You might resize at 34074624 bytes or 35 MB".
fn ntfs_minimum(info: &str) -> Option<u64> {
    let at = info.find("resize at ")? + "resize at ".len();
    info[at..].split_whitespace().next()?.parse().ok()
}

/// The bytes the filesystem on `node` spans, from its own metadata.
pub fn fs_bytes(node: &Path, fs: &str) -> Result<u64, ResizeError> {
    let dev = Device::open(node).map_err(|e| ResizeError(e.to_string()))?;
    let disk: SharedDisk = Arc::new(dev);
    let mut r = RangeReader::whole(disk);
    Ok(alloc::used(fs, &mut r, 1 << 20).map_err(|e| ResizeError(format!("{}: {e}", node.display())))?.fs_bytes)
}

/// Times `f`.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ntfs_minimum_is_read_from_ntfsresize_info() {
        let info = "Space in use       : 35 MB (16.2%)\nYou might resize at 34074624 bytes or 35 MB (freeing 175 MB).\n";
        assert_eq!(ntfs_minimum(info), Some(34_074_624));
        assert_eq!(ntfs_minimum("nothing"), None);
    }

    #[test]
    fn the_line_says_which_way() {
        let r = Resized { number: 2, fs: "ext4".into(), before: 1 << 30, after: 4 << 30, secs: 1.25 };
        assert_eq!(r.line(), "partition 2: ext4 grown from 1024 MiB to 4096 MiB in 1.25 s");
    }
}
