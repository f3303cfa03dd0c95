//! Telling the kernel about a changed table of a live block device with BLKPG, one partition at
//! a time (so mounted partitions stay as they are), then checking sysfs agrees. Image files
//! need nothing.

use std::ffi::c_int;
use std::fs::File;
use std::os::fd::AsRawFd;

use super::device::RwDevice;

const BLKPG_ADD_PARTITION: c_int = 1;
const BLKPG_DEL_PARTITION: c_int = 2;
const BLKPG_RESIZE_PARTITION: c_int = 3;

#[repr(C)]
struct BlkpgPartition {
    start: i64,
    length: i64,
    pno: c_int,
    devname: [u8; 64],
    volname: [u8; 64],
}

#[repr(C)]
struct BlkpgIoctlArg {
    op: c_int,
    flags: c_int,
    datalen: c_int,
    data: *mut BlkpgPartition,
}

// BLKPG = _IO(0x12, 105), taking a pointer to struct blkpg_ioctl_arg.
nix::ioctl_write_ptr_bad!(blkpg, nix::request_code_none!(0x12, 105), BlkpgIoctlArg);

/// One partition the kernel must learn about; bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add { number: u32, start: u64, size: u64 },
    Resize { number: u32, start: u64, size: u64 },
    Delete { number: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("the kernel was not told about partition {number} ({source})")]
    Ioctl { number: u32, source: std::io::Error },
    #[error("the kernel's view of partition {number} does not match the new table")]
    Mismatch { number: u32 },
}

fn call(file: &File, op: c_int, pno: u32, start: u64, length: u64) -> std::io::Result<()> {
    let mut part = BlkpgPartition {
        start: i64::try_from(start).map_err(std::io::Error::other)?,
        length: i64::try_from(length).map_err(std::io::Error::other)?,
        pno: c_int::try_from(pno).map_err(std::io::Error::other)?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg { op, flags: 0, datalen: std::mem::size_of::<BlkpgPartition>() as c_int, data: &mut part };
    // SAFETY: the fd is open for the lifetime of `file`; `arg` and the partition it points to
    // are live, properly laid out (#[repr(C)], matching <linux/blkpg.h>) for the whole call,
    // and the kernel only reads them.
    unsafe { blkpg(file.as_raw_fd(), &arg) }.map_err(std::io::Error::from)?;
    Ok(())
}

/// Tells the kernel every change, then checks `/sys` shows each added or resized partition
/// where the table puts it. `Ok(0)` for an image file; otherwise the number of changes told.
pub fn tell(dev: &RwDevice, changes: &[Change]) -> Result<usize, KernelError> {
    let Some((major, minor)) = dev.dev_numbers() else { return Ok(0) };
    for c in changes {
        let (op, number, start, size) = match *c {
            Change::Add { number, start, size } => (BLKPG_ADD_PARTITION, number, start, size),
            Change::Resize { number, start, size } => (BLKPG_RESIZE_PARTITION, number, start, size),
            Change::Delete { number } => (BLKPG_DEL_PARTITION, number, 0, 0),
        };
        call(dev.file(), op, number, start, size).map_err(|source| KernelError::Ioctl { number, source })?;
    }
    let base = format!("/sys/dev/block/{major}:{minor}");
    for c in changes {
        let (Change::Add { number, start, size } | Change::Resize { number, start, size }) = *c else { continue };
        let found = std::fs::read_dir(&base).ok().and_then(|dir| {
            dir.flatten().find(|e| {
                std::fs::read_to_string(e.path().join("partition")).is_ok_and(|s| s.trim() == number.to_string())
            })
        });
        let read = |e: &std::fs::DirEntry, f: &str| {
            std::fs::read_to_string(e.path().join(f)).ok().and_then(|s| s.trim().parse::<u64>().ok())
        };
        let ok = found.as_ref().is_some_and(|e| read(e, "start") == Some(start / 512) && read(e, "size") == Some(size / 512));
        if !ok {
            return Err(KernelError::Mismatch { number });
        }
    }
    Ok(changes.len())
}

/// What the kernel lists on the disk `major:minor`: (number, first byte, bytes).
fn kernel_table(major: u32, minor: u32) -> Vec<(u32, u64, u64)> {
    let base = format!("/sys/dev/block/{major}:{minor}");
    let Ok(dir) = std::fs::read_dir(&base) else { return Vec::new() };
    let read = |e: &std::fs::DirEntry, f: &str| std::fs::read_to_string(e.path().join(f)).ok().and_then(|s| s.trim().parse::<u64>().ok());
    dir.flatten()
        .filter_map(|e| Some((u32::try_from(read(&e, "partition")?).ok()?, read(&e, "start")? * 512, read(&e, "size")? * 512)))
        .collect()
}

/// The changes that make the kernel's partitions `now` into `table` (number, first byte,
/// bytes): a partition that moved or changed size is deleted and added again; one the same
/// is not touched.
pub fn changes_to(now: &[(u32, u64, u64)], table: &[(u32, u64, u64)]) -> Vec<Change> {
    let mut out = Vec::new();
    for &(n, start, size) in now {
        if !table.contains(&(n, start, size)) {
            out.push(Change::Delete { number: n });
        }
    }
    for &(n, start, size) in table {
        if !now.contains(&(n, start, size)) {
            out.push(Change::Add { number: n, start, size });
        }
    }
    out
}

/// Tells the kernel a whole new table of `dev` (after a lay-down wrote it), leaving the
/// partitions it already has right alone. `Ok(0)` for an image file.
pub fn follow(dev: &RwDevice, table: &[(u32, u64, u64)]) -> Result<usize, KernelError> {
    let Some((major, minor)) = dev.dev_numbers() else { return Ok(0) };
    tell(dev, &changes_to(&kernel_table(major, minor), table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_is_told() {
        let now = [(1, 1 << 20, 96 << 20), (2, 182 << 20, 72 << 20)];
        let table = [(1, 1 << 20, 32 << 20), (2, 182 << 20, 72 << 20), (3, 33 << 20, 149 << 20)];
        assert_eq!(
            changes_to(&now, &table),
            vec![Change::Delete { number: 1 }, Change::Add { number: 1, start: 1 << 20, size: 32 << 20 }, Change::Add { number: 3, start: 33 << 20, size: 149 << 20 }]
        );
        assert!(changes_to(&table, &table).is_empty());
    }
}
