//! Just enough raw FAT32 to read a file's clusters without fatfs: the geometry from the boot
//! sector and a cluster chain turned into extents. fatfs seeks by walking the chain from the
//! first cluster one 4-byte read at a time; reading records at random offsets of a 1 GiB
//! segment that way costs tens of milliseconds each. Writes still go through fatfs.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Where the FAT and the data area are, in bytes from the volume start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub cluster_size: u64,
    pub fat_start: u64,
    pub data_start: u64,
    /// Bytes of one FAT.
    pub fat_len: u64,
    /// Number of data clusters (numbered from 2).
    pub clusters: u32,
}

/// A run of a file's bytes that is contiguous in the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub file_offset: u64,
    pub volume_offset: u64,
    pub len: u64,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Geometry {
    /// Reads the BIOS parameter block of the FAT32 volume at `start` of `file`.
    pub fn read(file: &File, start: u64) -> io::Result<Geometry> {
        let mut b = [0u8; 512];
        file.read_exact_at(&mut b, start)?;
        Geometry::parse(&b).map_err(bad)
    }

    /// Parses a FAT32 boot sector; `Err` says what does not fit.
    pub(crate) fn parse(b: &[u8; 512]) -> Result<Geometry, String> {
        if b[510] != 0x55 || b[511] != 0xAA {
            return Err("no boot sector signature 55 AA".into());
        }
        if &b[82..90] != b"FAT32   " {
            return Err("the boot sector does not say FAT32".into());
        }
        let bpb = crate::fs::bpb::Bpb::decode(b);
        let (sector, per_cluster) = (bpb.bytes_per_sector, bpb.sectors_per_cluster);
        let (reserved, fats, fat_sectors) = (bpb.reserved_sectors, bpb.fats, bpb.sectors_per_fat);
        if !(512..=4096).contains(&sector) || !sector.is_power_of_two() {
            return Err(format!("a sector size of {sector}"));
        }
        if per_cluster == 0 || !per_cluster.is_power_of_two() || reserved == 0 || fats == 0 || fat_sectors == 0 {
            return Err("the boot sector's cluster, reserved or FAT fields are zero or invalid".into());
        }
        let data_sector = bpb.first_data_sector();
        let clusters = bpb.clusters().ok_or("the FATs are larger than the volume")?;
        // Each cluster needs its 4-byte FAT entry.
        if clusters + 2 > fat_sectors * sector / 4 || clusters > 0x0FFF_FFF5 {
            return Err(format!("{clusters} clusters do not fit the FAT"));
        }
        Ok(Geometry {
            cluster_size: sector * per_cluster,
            fat_start: reserved * sector,
            data_start: data_sector * sector,
            fat_len: fat_sectors * sector,
            clusters: clusters as u32,
        })
    }

    /// The cluster whose data starts at volume byte `at`.
    pub fn cluster_at(&self, at: u64) -> Option<u32> {
        let rel = at.checked_sub(self.data_start)?;
        (rel % self.cluster_size == 0)
            .then(|| rel / self.cluster_size + 2)
            .filter(|c| *c < u64::from(self.clusters) + 2)
            .map(|c| c as u32)
    }

    /// Follows the chain from `first` for a file of `size` bytes and returns its extents.
    /// Fails on a chain that ends early, loops, or leaves the volume.
    pub fn extents(&self, file: &File, start: u64, first: u32, size: u64) -> io::Result<Vec<Extent>> {
        let need = size.div_ceil(self.cluster_size);
        let mut fat = FatCache {
            file,
            at: start + self.fat_start,
            len: self.fat_len,
            block: u64::MAX,
            buf: vec![0u8; 64 * 1024],
        };
        let mut out: Vec<Extent> = Vec::new();
        let mut cluster = first;
        for i in 0..need {
            if cluster < 2 || cluster >= self.clusters + 2 {
                return Err(bad(format!("cluster {cluster} at position {i} of the chain is outside the volume")));
            }
            let vol = self.data_start + (u64::from(cluster) - 2) * self.cluster_size;
            let file_offset = i * self.cluster_size;
            let len = self.cluster_size.min(size - file_offset);
            match out.last_mut() {
                Some(e) if e.volume_offset + e.len == vol => e.len += len,
                _ => out.push(Extent { file_offset, volume_offset: vol, len }),
            }
            let next = fat.entry(cluster)? & 0x0FFF_FFFF;
            if i + 1 < need {
                if next >= 0x0FFF_FFF7 {
                    return Err(bad(format!("the cluster chain ends after {} of {need} clusters", i + 1)));
                }
                cluster = next;
            }
        }
        Ok(out)
    }

    /// Free clusters, counted from the first FAT in 64 KiB reads.
    pub fn free_bytes(&self, file: &File, start: u64) -> io::Result<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let total = (u64::from(self.clusters) + 2) * 4;
        let mut free = 0u64;
        let mut at = 0u64;
        while at < total {
            let n = (total - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], start + self.fat_start + at)?;
            for (i, e) in buf[..n].chunks_exact(4).enumerate() {
                let idx = at / 4 + i as u64;
                if idx >= 2 && u32::from_le_bytes([e[0], e[1], e[2], e[3]]) & 0x0FFF_FFFF == 0 {
                    free += 1;
                }
            }
            at += n as u64;
        }
        Ok(free * self.cluster_size)
    }
}

/// One 64 KiB block of the FAT kept in memory.
struct FatCache<'a> {
    file: &'a File,
    /// Disk offset and length of the first FAT.
    at: u64,
    len: u64,
    block: u64,
    buf: Vec<u8>,
}

impl FatCache<'_> {
    fn entry(&mut self, cluster: u32) -> io::Result<u32> {
        let size = self.buf.len() as u64;
        let byte = u64::from(cluster) * 4;
        if byte + 4 > self.len {
            return Err(bad(format!("cluster {cluster} has no FAT entry")));
        }
        let block = byte / size;
        if block != self.block {
            let n = size.min(self.len - block * size) as usize;
            self.block = u64::MAX;
            self.file.read_exact_at(&mut self.buf[..n], self.at + block * size)?;
            self.block = block;
        }
        let i = (byte % size) as usize;
        Ok(u32::from_le_bytes([self.buf[i], self.buf[i + 1], self.buf[i + 2], self.buf[i + 3]]))
    }
}
