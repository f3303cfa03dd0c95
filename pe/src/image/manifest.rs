//! The manifest: what the image holds, as JSON (format 1). It is covered by the image digest
//! (and so by the signature), and checked field by field before anything uses it.

use serde::{Deserialize, Serialize};

use super::format::{hex, unhex};

pub const FORMAT: u32 = 1;
pub const MAX_PARTITIONS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Gpt,
    Mbr,
}

/// How the image boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    Uefi,
    Bios,
    Both,
    None,
}

impl BootMode {
    pub fn uefi(self) -> bool {
        matches!(self, BootMode::Uefi | BootMode::Both)
    }
    pub fn bios(self) -> bool {
        matches!(self, BootMode::Bios | BootMode::Both)
    }
}

/// What a partition's chunks hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// Only the blocks the filesystem's allocation data marks used.
    UsedBlocks,
    /// Every byte of the partition.
    Raw,
}

/// Whether the partition GUID (and for the disk, the disk GUID) is kept or made fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuidPolicy {
    Fresh,
    Pinned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creation {
    /// Unix seconds (UTC).
    pub unix_time: u64,
    /// `inplace 0.1.0`.
    pub tool: String,
    /// What it was made from (a device or image path).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSpec {
    /// Its number on the source disk (a hint for the new number).
    pub number: u32,
    /// GPT type GUID (lower case), or the MBR type byte as `0x83`.
    pub type_id: String,
    pub guid_policy: GuidPolicy,
    /// The partition GUID when pinned.
    pub guid: Option<String>,
    pub name: String,
    /// Bytes of the partition on the source.
    pub size: u64,
    /// The smallest partition the content fits in (the filesystem's own size).
    pub min_size: u64,
    /// The filesystem's bytes on the reference when the image holds it shrunk to its minimum
    /// (`image create --shrinkable`); the lay-down grows it to fill its partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk_from: Option<u64>,
    /// `ext4`, `ntfs`, `vfat`, … or none.
    pub fs: Option<String>,
    /// The sector size the filesystem records (FAT, NTFS); it must equal the target's.
    pub fs_sector_size: Option<u32>,
    /// GPT attribute bits; for MBR bit 7 is the active flag.
    pub attributes: u64,
    /// This partition takes the remaining room; its filesystem (ext2/3/4, NTFS) is grown to fill
    /// it at lay-down.
    pub grow: bool,
    pub content: Content,
    /// Logical bytes stored for it.
    pub data_bytes: u64,
    pub first_chunk: u64,
    pub chunk_count: u64,
    /// A Windows volume's sysprep markers (`os::sysprep`): whether it was generalized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysprep: Option<crate::os::sysprep::Sysprep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created: Creation,
    pub table: TableKind,
    /// The source's logical sector size.
    pub sector_size: u32,
    pub boot: BootMode,
    pub disk_guid_policy: GuidPolicy,
    pub disk_guid: Option<String>,
    /// The 440 bytes of BIOS boot code from sector 0, hex, when the image boots with BIOS.
    pub bios_boot_code: Option<String>,
    pub partitions: Vec<PartitionSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the image manifest is invalid: {0}")]
pub struct ManifestError(pub String);

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses and checks: format, sector size, partition count, names, GUIDs, sizes, one grower
    /// at most, chunk ranges back to back covering `chunk_count`.
    pub fn decode(b: &[u8], chunk_count: u64) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_slice(b).map_err(|e| ManifestError(format!("not valid manifest JSON: {e}")))?;
        let bad = |s: String| Err(ManifestError(s));
        if m.format != FORMAT {
            return bad(format!("manifest format {} (this inplace reads {FORMAT})", m.format));
        }
        if !m.sector_size.is_power_of_two() || !(512..=4096).contains(&m.sector_size) {
            return bad(format!("sector size {}", m.sector_size));
        }
        if m.partitions.is_empty() || m.partitions.len() > MAX_PARTITIONS {
            return bad(format!("{} partitions (1..{MAX_PARTITIONS})", m.partitions.len()));
        }
        if m.created.tool.len() > 256 || m.created.source.len() > 4096 {
            return bad("creation info too long".into());
        }
        if let Some(g) = &m.disk_guid {
            if !is_guid(g) {
                return bad(format!("disk GUID {g:?}"));
            }
        }
        if m.disk_guid_policy == GuidPolicy::Pinned && m.disk_guid.is_none() {
            return bad("the disk GUID is pinned but not given".into());
        }
        if let Some(code) = &m.bios_boot_code {
            if unhex::<440>(code).is_none() {
                return bad("bios_boot_code is not 440 bytes of hex".into());
            }
        }
        let ss = u64::from(m.sector_size);
        let mut next_chunk = 0u64;
        let mut growers = 0;
        for (i, p) in m.partitions.iter().enumerate() {
            let what = format!("partition {i} (number {})", p.number);
            match m.table {
                TableKind::Gpt if !is_guid(&p.type_id) => return bad(format!("{what}: type {:?} is not a GUID", p.type_id)),
                TableKind::Mbr if !(p.type_id.len() == 4 && p.type_id.starts_with("0x") && u8::from_str_radix(&p.type_id[2..], 16).is_ok()) => {
                    return bad(format!("{what}: MBR type {:?} is not like 0x83", p.type_id))
                }
                _ => {}
            }
            if let Some(g) = &p.guid {
                if !is_guid(g) {
                    return bad(format!("{what}: GUID {g:?}"));
                }
            }
            if p.guid_policy == GuidPolicy::Pinned && p.guid.is_none() {
                return bad(format!("{what}: GUID pinned but not given"));
            }
            if p.name.encode_utf16().count() > 36 {
                return bad(format!("{what}: name longer than 36 UTF-16 units"));
            }
            if p.size == 0 || p.size % ss != 0 || p.min_size == 0 || p.min_size > p.size || p.min_size % 512 != 0 {
                return bad(format!("{what}: size {} / minimum {} (must be sector multiples, minimum ≤ size)", p.size, p.min_size));
            }
            if let Some(fss) = p.fs_sector_size {
                if !fss.is_power_of_two() || !(512..=4096).contains(&fss) {
                    return bad(format!("{what}: filesystem sector size {fss}"));
                }
            }
            if p.fs.as_ref().is_some_and(|f| f.len() > 16) || p.fs.as_ref().is_some_and(|f| !f.bytes().all(|c| c.is_ascii_alphanumeric())) {
                return bad(format!("{what}: filesystem name"));
            }
            if p.grow {
                growers += 1;
            }
            if p.first_chunk != next_chunk {
                return bad(format!("{what}: chunks start at {} (expected {next_chunk})", p.first_chunk));
            }
            next_chunk = next_chunk.checked_add(p.chunk_count).ok_or_else(|| ManifestError(format!("{what}: chunk count")))?;
        }
        if growers > 1 {
            return bad(format!("{growers} partitions are marked to grow; at most one may"));
        }
        if next_chunk != chunk_count {
            return bad(format!("the partitions hold {next_chunk} chunks, the header says {chunk_count}"));
        }
        Ok(m)
    }

    pub fn bios_code(&self) -> Option<[u8; 440]> {
        self.bios_boot_code.as_deref().and_then(unhex::<440>)
    }

    pub fn set_bios_code(&mut self, code: &[u8; 440]) {
        self.bios_boot_code = Some(hex(code));
    }

    /// The smallest size of each partition, in order: every run must lie below it.
    pub fn min_sizes(&self) -> Vec<u64> {
        self.partitions.iter().map(|p| p.min_size).collect()
    }
}

/// A valid one-partition manifest for tests: a 1 MiB ESP stored in one chunk.
#[cfg(test)]
pub fn sample() -> Manifest {
    Manifest {
        format: 1,
        created: Creation { unix_time: 1, tool: "t".into(), source: "s".into() },
        table: TableKind::Gpt,
        sector_size: 512,
        boot: BootMode::Uefi,
        disk_guid_policy: GuidPolicy::Fresh,
        disk_guid: None,
        bios_boot_code: None,
        partitions: vec![PartitionSpec {
            number: 1,
            type_id: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b".into(),
            guid_policy: GuidPolicy::Fresh,
            guid: None,
            name: "EFI".into(),
            size: 1 << 20,
            min_size: 1 << 20,
            shrunk_from: None,
            fs: Some("vfat".into()),
            fs_sector_size: Some(512),
            attributes: 0,
            grow: false,
            content: Content::UsedBlocks,
            data_bytes: 1024,
            first_chunk: 0,
            chunk_count: 1,
            sysprep: None,
        }],
    }
}
