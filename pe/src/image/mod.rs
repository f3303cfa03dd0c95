//! OS images: a multi-partition, sparse, chunked and checksummed format (`docs/image-format.md`),
//! and the steps that make, check and lay one down.
//!
//! - [`format`]: header, chunk index, signature block (bytes ↔ structs; fuzzed).
//! - [`manifest`]: the JSON manifest (partitions, boot mode, creation info).
//! - [`source`] / [`http`]: where image bytes come from — local files, HTTP(S) with Range
//!   resume (over [`crate::net::http`]).
//! - [`reader`]: open an image by path or URL and check digest, pins and signature.
//! - [`pipeline`]: chunks in flight — ordered reads, parallel checks and zstd decoding.
//! - [`create`]: disk → image, storing only used blocks ([`crate::fs::alloc`]); signing keys;
//!   [`shrink`]: the growable filesystem shrunk to its minimum in a copy (`--shrinkable`).
//! - [`verify`]: check every chunk.
//! - [`resize`]: filesystems grown or shrunk by their own tools (e2fsprogs, ntfs-3g).
//! - [`layout`]: pure placement of the image's partitions on a target.
//! - [`apply`]: `prepare` (read and check, write nothing) and `lay_down` (write), with
//!   [`target`], [`table`] and [`efi`]; [`stage`]: download a remote image before writing.
//!
//! Every entry point takes a [`crate::progress::Sink`] and a [`crate::progress::Cancel`] and
//! returns a [`crate::error::Error`] naming its step and what it had written.

pub mod apply;
pub mod create;
pub mod efi;
pub mod format;
pub mod http;
pub mod layout;
pub mod manifest;
pub mod pipeline;
pub mod reader;
pub mod resize;
pub mod shrink;
pub mod source;
pub mod stage;
pub mod table;
pub mod target;
pub mod verify;

use crate::error::{Error, Result, Written};
use crate::step::Step;

/// An error from inside the image code as the entry point of `step` reports it, having written
/// at least `written`. A cancellation is reworded for `step`; its hints stay.
pub(crate) fn seen_from(e: Error, step: Step, written: Written) -> Error {
    let written = e.written.max(written);
    if e.is_cancelled() {
        Error { hints: e.hints, ..Error::cancelled(step, written) }
    } else {
        e.in_step(step).written(written)
    }
}

/// Parses header, manifest and index from a whole image held in memory, without trusting
/// anything (for fuzzing). Never panics.
pub fn parse_all(bytes: &[u8]) -> Result<(format::Header, manifest::Manifest, format::Index)> {
    let fe = |e| reader::format_error("image", e);
    let h = format::Header::decode(bytes).map_err(fe)?;
    let get = |o: u64, l: u64| -> Result<&[u8]> {
        let truncated = || fe(format::FormatError::Truncated { want: o.saturating_add(l), have: bytes.len() as u64 });
        let s = usize::try_from(o).map_err(|_| truncated())?;
        let e = s.checked_add(usize::try_from(l).map_err(|_| truncated())?).ok_or_else(truncated)?;
        bytes.get(s..e).ok_or_else(truncated)
    };
    let m = manifest::Manifest::decode(get(h.manifest_offset, h.manifest_len)?, h.chunk_count).map_err(|e| reader::manifest_error("image", e))?;
    let i = format::Index::decode(get(h.index_offset, h.index_len)?, &h, &m.min_sizes()).map_err(fe)?;
    if h.signed() {
        format::SignatureBlock::decode(get(h.sig_offset, h.sig_len)?).map_err(fe)?;
    }
    Ok((h, m, i))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::format::*;
    use super::manifest::{sample as sample_manifest, Manifest};

    /// A small valid image (metadata only; the payload bytes are arbitrary).
    fn sample() -> Vec<u8> {
        let m = sample_manifest();
        let payload = vec![7u8; 40];
        let index = Index {
            chunks: vec![ChunkRecord {
                partition: 0,
                run_count: 2,
                first_run: 0,
                stored_offset: DATA_OFFSET,
                stored_len: 40,
                logical_len: 1024,
                stored_crc: crc32fast::hash(&payload),
                logical_crc: 0,
                stored_sha256: [0; 32],
            }],
            runs: vec![Run { offset: 0, len: 512 }, Run { offset: 4096, len: 512 }],
        }
        .encode();
        let mb = m.encode();
        let data_end = DATA_OFFSET + 40;
        let mut h = Header {
            chunk_size: 1 << 20,
            manifest_offset: data_end,
            manifest_len: mb.len() as u64,
            index_offset: data_end + mb.len() as u64,
            index_len: index.len() as u64,
            chunk_count: 1,
            run_count: 2,
            data_end,
            file_len: data_end + mb.len() as u64 + index.len() as u64,
            digest: [0; 32],
            sig_offset: 0,
            sig_len: 0,
        };
        h.digest = h.compute_digest(&mb, &index);
        let mut out = h.encode().to_vec();
        out.resize(DATA_OFFSET as usize, 0);
        out.extend_from_slice(&payload);
        out.extend_from_slice(&mb);
        out.extend_from_slice(&index);
        out
    }

    #[test]
    fn sample_parses() {
        let (h, m, i) = super::parse_all(&sample()).unwrap();
        assert_eq!(h.chunk_count, 1);
        assert_eq!(m.partitions[0].name, "EFI");
        assert_eq!(i.runs.len(), 2);
    }

    proptest! {
        #[test]
        fn mutated_images_never_panic(flips in proptest::collection::vec((0usize..8192, any::<u8>()), 1..8), cut in 0usize..8192) {
            let mut b = sample();
            for (at, v) in flips {
                let n = b.len();
                b[at % n] ^= v;
            }
            let _ = super::parse_all(&b);
            b.truncate(cut.min(b.len()));
            let _ = super::parse_all(&b);
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = super::parse_all(&b);
            let _ = Manifest::decode(&b, 3);
        }
    }
}
