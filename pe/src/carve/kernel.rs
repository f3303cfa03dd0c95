//! Telling the kernel about the new table of a live block device with BLKPG (one partition at
//! a time, so mounted partitions stay as they are), then checking sysfs agrees. Image files
//! need nothing.

use std::ffi::c_int;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::model::{Plan, Step};
use crate::disk::device::Device;

const BLKPG_ADD_PARTITION: c_int = 1;
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

/// `None` for an image file; otherwise what was told, after checking sysfs agrees.
pub fn tell_kernel(path: &Path, plan: &Plan) -> Result<Option<String>, String> {
    let dev = Device::open(path).map_err(|e| e.to_string())?;
    let Some((major, minor)) = dev.dev_numbers() else { return Ok(None) };
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut want = Vec::new();
    for step in &plan.steps {
        let r = match step {
            Step::AddPartition { number, start, size, .. } => {
                want.push((*number, *start, *size));
                call(&file, BLKPG_ADD_PARTITION, *number, *start, *size)
            }
            Step::ShrinkEntry { number, to_size, .. } => {
                let start = plan.after.part(*number).map_or(0, |p| p.start);
                want.push((*number, start, *to_size));
                call(&file, BLKPG_RESIZE_PARTITION, *number, start, *to_size)
            }
            Step::GrowExtended { .. } => Ok(()), // the kernel shows extended partitions as 1 KiB stubs
        };
        r.map_err(|e| {
            format!(
                "the table on {} is written, but the kernel was not told ({e}); re-read it with \
                 `partprobe {}` or reboot before using the store",
                path.display(),
                path.display()
            )
        })?;
    }
    let base = format!("/sys/dev/block/{major}:{minor}");
    for (number, start, size) in &want {
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
            return Err(format!(
                "the kernel's view of partition {number} on {} does not match the new table; \
                 reboot before using the store",
                path.display()
            ));
        }
    }
    Ok(Some(format!("the kernel now sees {} changed partition(s) on {}", want.len(), path.display())))
}
