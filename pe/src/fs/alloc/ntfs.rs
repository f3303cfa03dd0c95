//! NTFS: the `$Bitmap` file, one bit per cluster, plus the backup boot sector that sits just
//! past the last cluster (outside the bitmap).

use ntfs::{KnownNtfsFileRecordNumber, Ntfs, NtfsReadSeek};

use super::{AllocError, Geometry, Runs};
use crate::fs::range::RangeReader;

/// Pushes the used byte ranges, the backup boot sector last (it is also the trailer; the
/// filesystem bytes include it).
pub fn used(r: &mut RangeReader, out: &mut Runs) -> Result<Geometry, AllocError> {
    let mut boot = [0u8; 512];
    r.read_exact_at(0, &mut boot).map_err(|e| format!("reading the NTFS boot sector: {e}"))?;
    if &boot[3..11] == b"-FVE-FS-" {
        return Err("the volume is BitLocker-encrypted; decrypt it in Windows (manage-bde -off) first".into());
    }
    let bps = u64::from(u16::from_le_bytes([boot[11], boot[12]]));
    let ntfs = Ntfs::new(r).map_err(|e| format!("NTFS: {e}"))?;
    if let Ok(info) = ntfs.volume_info(r) {
        if info.flags().contains(ntfs::structured_values::NtfsVolumeFlags::IS_DIRTY) {
            return Err("the NTFS volume is marked dirty; run `chkdsk /f` in Windows and shut down fully first".into());
        }
    }
    let cluster = u64::from(ntfs.cluster_size());
    let volume = ntfs.size();
    let clusters = volume / cluster;
    let file = ntfs.file(r, KnownNtfsFileRecordNumber::Bitmap as u64).map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    let item = file.data(r, "").ok_or("NTFS $Bitmap has no data")?.map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    let attr = item.to_attribute().map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    let len = attr.value_length();
    if len < clusters.div_ceil(8) || len > 512 << 20 {
        return Err(format!("NTFS $Bitmap is {len} bytes for {clusters} clusters"));
    }
    let mut value = attr.value(r).map_err(|e| format!("NTFS $Bitmap: {e}"))?;
    // Read the bitmap in pieces so a large volume needs no large buffer.
    let mut piece = vec![0u8; 1 << 20];
    let mut c = 0u64; // first cluster of the piece
    let mut run: Option<u64> = None;
    while c < clusters {
        let want = piece.len().min(usize::try_from((clusters - c).div_ceil(8)).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < want {
            let n = value.read(r, &mut piece[done..want]).map_err(|e| format!("NTFS $Bitmap: {e}"))?;
            if n == 0 {
                return Err("NTFS $Bitmap ends early".into());
            }
            done += n;
        }
        for (i, byte) in piece[..want].iter().enumerate() {
            let whole = c + i as u64 * 8 + 8 <= clusters;
            if whole && ((*byte == 0 && run.is_none()) || (*byte == 0xFF && run.is_some())) {
                continue;
            }
            for bit in 0..8u64 {
                let k = c + i as u64 * 8 + bit;
                if k >= clusters {
                    break;
                }
                if byte & (1 << bit) != 0 {
                    run.get_or_insert(k);
                } else if let Some(s) = run.take() {
                    out.push(s * cluster, (k - s) * cluster);
                }
            }
        }
        c += want as u64 * 8;
    }
    if let Some(s) = run {
        out.push(s * cluster, (clusters - s) * cluster);
    }
    // The backup boot sector: the sector just past the volume.
    let bps = if (512..=4096).contains(&bps) { bps } else { 512 };
    out.push(volume, bps);
    Ok(Geometry { block_size: cluster, fs_bytes: volume + bps, fs_sector_size: Some(bps as u32), trailer: Some(volume) })
}
