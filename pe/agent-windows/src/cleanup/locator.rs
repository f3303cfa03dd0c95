//! The store's locator (`docs/store-format.md`, "The locator"), as much of it as cleanup needs:
//! magic, version, record CRC-32 and the job id. The record sits at byte `2 × S` of the store
//! partition, S being the logical sector size: 1024 (512-byte sectors) or 8192 (4096).

/// Where a locator may sit in the first bytes of the store volume.
pub const OFFSETS: [usize; 2] = [1024, 8192];
/// How many bytes of the volume to read: covers both offsets, a multiple of any sector size.
pub const HEAD_LEN: usize = 16 * 1024;

const MAGIC: &[u8; 8] = b"INPLSTOR";
const LEN: usize = 512;
const CRC_AT: usize = 508;

/// CRC-32 as zlib computes it (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The job id of the valid locator record that starts `rec`, if it is one.
pub fn record_job_id(rec: &[u8]) -> Option<[u8; 16]> {
    let rec = rec.get(..LEN)?;
    if &rec[..8] != MAGIC || u16::from_le_bytes([rec[8], rec[9]]) != 1 {
        return None;
    }
    let stored = u32::from_le_bytes(rec[CRC_AT..LEN].try_into().ok()?);
    if crc32(&rec[..CRC_AT]) != stored {
        return None;
    }
    rec[16..32].try_into().ok()
}

/// The job ids of the valid locators in the first bytes of a volume (at 1024 and 8192).
pub fn job_ids(head: &[u8]) -> Vec<[u8; 16]> {
    let mut ids: Vec<[u8; 16]> = OFFSETS.iter().filter_map(|&at| head.get(at..).and_then(record_job_id)).collect();
    ids.dedup();
    ids
}

/// job.json's `job_id` (32 hex digits) as the 16 bytes a locator holds.
pub fn parse_job_id(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

/// A locator record for `job_id` (the fields cleanup does not read are zero): for tests and
/// the stand-in volumes.
pub fn record(job_id: [u8; 16]) -> [u8; LEN] {
    let mut rec = [0u8; LEN];
    rec[..8].copy_from_slice(MAGIC);
    rec[8..10].copy_from_slice(&1u16.to_le_bytes());
    rec[10..12].copy_from_slice(&(LEN as u16).to_le_bytes());
    rec[16..32].copy_from_slice(&job_id);
    let crc = crc32(&rec[..CRC_AT]);
    rec[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    rec
}

/// The first bytes of a store volume with sector size `sector` (512 or 4096) for `job_id`.
pub fn volume_head(job_id: [u8; 16], sector: usize) -> Vec<u8> {
    let mut head = vec![0u8; HEAD_LEN];
    head[2 * sector..2 * sector + LEN].copy_from_slice(&record(job_id));
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "dad2c558c81849a99001b7402dfeabd1";

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn job_id_hex_round_trip() {
        let id = parse_job_id(ID).unwrap();
        assert_eq!(id[0], 0xda);
        assert_eq!(id[15], 0xd1);
        assert_eq!(parse_job_id(&ID.to_uppercase()), Some(id));
        assert_eq!(parse_job_id("dad2"), None);
        assert_eq!(parse_job_id("zzd2c558c81849a99001b7402dfeabd1"), None);
        assert_eq!(parse_job_id("é2c558c81849a99001b7402dfeabd1"), None);
    }

    #[test]
    fn finds_the_locator_at_either_sector_size() {
        let id = parse_job_id(ID).unwrap();
        assert_eq!(job_ids(&volume_head(id, 512)), vec![id]);
        assert_eq!(job_ids(&volume_head(id, 4096)), vec![id]);
        assert!(job_ids(&vec![0u8; HEAD_LEN]).is_empty());
        assert!(job_ids(&volume_head(id, 512)[..1500]).is_empty(), "a record cut short is no record");
    }

    #[test]
    fn rejects_a_damaged_record() {
        let id = parse_job_id(ID).unwrap();
        for (at, what) in [(1024, "magic"), (1024 + 8, "version"), (1024 + 20, "job id"), (1024 + 509, "crc")] {
            let mut head = volume_head(id, 512);
            head[at] ^= 0x40;
            assert!(job_ids(&head).is_empty(), "{what}");
        }
        let mut head = volume_head(id, 512);
        head[1024 + 8..1024 + 10].copy_from_slice(&2u16.to_le_bytes());
        let crc = crc32(&head[1024..1024 + CRC_AT]);
        head[1024 + CRC_AT..1024 + LEN].copy_from_slice(&crc.to_le_bytes());
        assert!(job_ids(&head).is_empty(), "version 2 with a good CRC");
    }
}
