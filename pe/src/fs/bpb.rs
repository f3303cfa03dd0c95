//! The FAT boot sector's geometry (the BIOS parameter block), decoded once for every FAT user:
//! the FAT reader's checks before fatfs sees the volume, the allocation map, and the store's
//! raw cluster reads. Each user keeps its own policy on what it accepts; the fields and the
//! arithmetic from them are here, in `u64` (fatfs does some of it in `u32`).

/// The fields of a FAT12/16/32 boot sector that place its areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bpb {
    pub bytes_per_sector: u64,
    pub sectors_per_cluster: u64,
    pub reserved_sectors: u64,
    pub fats: u64,
    /// Entries of the fixed root directory (0 on FAT32).
    pub root_entries: u64,
    /// The 16-bit count, or the 32-bit one when that is 0.
    pub total_sectors: u64,
    /// The 16-bit size of one FAT, or the FAT32 32-bit one when that is 0.
    pub sectors_per_fat: u64,
}

impl Bpb {
    /// Decodes the fields; never fails (see [`Bpb::shape_ok`]).
    pub fn decode(b: &[u8; 512]) -> Bpb {
        let le16 = |at: usize| u64::from(u16::from_le_bytes([b[at], b[at + 1]]));
        let le32 = |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
        Bpb {
            bytes_per_sector: le16(11),
            sectors_per_cluster: u64::from(b[13]),
            reserved_sectors: le16(14),
            fats: u64::from(b[16]),
            root_entries: le16(17),
            total_sectors: if le16(19) != 0 { le16(19) } else { le32(32) },
            sectors_per_fat: if le16(22) != 0 { le16(22) } else { le32(36) },
        }
    }

    /// The shape every FAT volume has: a power-of-two sector of 512–4096 bytes, a power-of-two
    /// cluster, at least one FAT.
    pub fn shape_ok(&self) -> bool {
        let bps = self.bytes_per_sector;
        bps.is_power_of_two() && (512..=4096).contains(&bps) && self.sectors_per_cluster.is_power_of_two() && self.fats > 0
    }

    /// Sectors of the fixed root directory (FAT12/16).
    pub fn root_dir_sectors(&self) -> u64 {
        (self.root_entries * 32).div_ceil(self.bytes_per_sector.max(1))
    }

    /// The first sector of the data area (cluster 2).
    pub fn first_data_sector(&self) -> u64 {
        self.reserved_sectors + self.fats * self.sectors_per_fat + self.root_dir_sectors()
    }

    /// Data clusters, when the data area starts inside the volume.
    pub fn clusters(&self) -> Option<u64> {
        let data = self.total_sectors.checked_sub(self.first_data_sector()).filter(|d| *d > 0)?;
        data.checked_div(self.sectors_per_cluster)
    }

    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * self.bytes_per_sector
    }

    /// Bits per FAT entry for `clusters` data clusters (the count alone decides).
    pub fn fat_bits(clusters: u64) -> u32 {
        if clusters < 4085 {
            12
        } else if clusters < 65525 {
            16
        } else {
            32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boot sector `mkfs.fat` writes, read back.
    #[test]
    fn mkfs_fat_volumes_decode() {
        if std::process::Command::new("mkfs.fat").arg("--help").output().is_err() {
            eprintln!("skipped: mkfs.fat missing");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (fat, mib, bits) in [("12", 4u64, 12u32), ("16", 64, 16), ("32", 64, 32)] {
            let img = dir.path().join(format!("fat{fat}.img"));
            std::fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
            let o = std::process::Command::new("mkfs.fat").args(["-F", fat, "-S", "512"]).arg(&img).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let mut b = [0u8; 512];
            b.copy_from_slice(&std::fs::read(&img).unwrap()[..512]);
            let bpb = Bpb::decode(&b);
            assert!(bpb.shape_ok(), "{bpb:?}");
            assert_eq!((bpb.bytes_per_sector, bpb.total_sectors * 512), (512, mib << 20));
            assert_eq!(Bpb::fat_bits(bpb.clusters().unwrap()), bits, "{bpb:?}");
            assert_eq!(bpb.root_dir_sectors() == 0, fat == "32");
        }
    }

    #[test]
    fn garbage_never_divides_by_zero() {
        let b = [0u8; 512];
        let bpb = Bpb::decode(&b);
        assert!(!bpb.shape_ok());
        assert_eq!(bpb.clusters(), None);
        let mut b = [0xffu8; 512];
        b[13] = 0;
        assert_eq!(Bpb::decode(&b).clusters(), None);
    }
}
