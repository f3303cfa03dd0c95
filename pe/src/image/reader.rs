//! Opening an image: the source named by a path or URL, then header, manifest, index and
//! signature, each parsed and checked, then the trust policy (digest, pinned hash, signature,
//! pinned key). Nothing is trusted before this returns `Ok`; chunk payloads are checked later
//! ([`super::pipeline`]).
//!
//! Errors: a damaged image is [`Kind::Damaged`](crate::error::Kind::Damaged), an image that
//! is not the one pinned (or not an image) is `Refused`.

use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};

use super::format::{self, FormatError, Header, Index, SignatureBlock, HEADER_LEN};
use super::http::HttpSource;
use super::manifest::{Manifest, ManifestError};
use super::source::{LocalFile, Source};
use crate::error::{Error, Result};
use crate::net::http::HttpOptions;
use crate::net::retry::retry;
use crate::progress::{Cancel, Sink};
use crate::step::Step;

const STEP: Step = Step::Image;
/// What to do about an image whose bytes are wrong.
pub const RECOPY: &str = "re-copy or re-download the image";

/// What the caller insists on (from the command line or a preset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// The image digest must be exactly this.
    pub pin_sha256: Option<[u8; 32]>,
    /// The image must be signed by this ed25519 key.
    pub pin_key: Option<[u8; 32]>,
}

/// An opened, checked image.
pub struct Image {
    pub source: Box<dyn Source>,
    pub name: String,
    pub header: Header,
    pub manifest: Manifest,
    pub index: Index,
    pub signature: Option<SignatureBlock>,
    /// The key of a valid signature; `None` when unsigned.
    pub signed_by: Option<[u8; 32]>,
}

impl Image {
    pub fn digest_hex(&self) -> String {
        format::hex(&self.header.digest)
    }

    /// Logical bytes over all chunks.
    pub fn logical_bytes(&self) -> u64 {
        self.index.chunks.iter().map(|c| u64::from(c.logical_len)).sum()
    }
}

/// `name`'s format error as the engine reports it.
pub fn format_error(name: &str, e: FormatError) -> Error {
    let problem = format!("{name}: {e}");
    match e {
        FormatError::Magic => Error::refused(STEP, problem),
        FormatError::Version(_) => Error::refused(STEP, problem).advice("use a newer inplace"),
        _ => Error::damaged(STEP, problem).advice(RECOPY),
    }
}

/// A manifest that parsed but is not valid: the image was made wrong, so copying it again does
/// not help.
pub fn manifest_error(name: &str, e: ManifestError) -> Error {
    Error::refused(STEP, format!("{name}: {e}"))
}

/// Opens the image at `spec`: a path, or an `http://` / `https://` URL.
pub fn open(spec: &str, trust: &Trust, http: &HttpOptions, sink: &dyn Sink, cancel: &Cancel) -> Result<Image> {
    let source: Box<dyn Source> = if spec.starts_with("http://") || spec.starts_with("https://") {
        Box::new(HttpSource::open(spec, http, sink, cancel)?)
    } else if spec.contains("://") {
        return Err(Error::refused(STEP, format!("{spec}: only local paths and http:// or https:// URLs are supported")));
    } else {
        Box::new(LocalFile::open(Path::new(spec))?)
    };
    check(source, trust, http, sink, cancel)
}

fn read(src: &mut dyn Source, http: &HttpOptions, sink: &dyn Sink, cancel: &Cancel, at: (u64, u64), what: &str) -> Result<Vec<u8>> {
    let (offset, len) = at;
    let n = usize::try_from(len).map_err(|_| Error::damaged(STEP, format!("{what}: {len} bytes is too large")))?;
    let mut buf = vec![0u8; n];
    let name = src.name();
    retry(http.backoff(), sink, cancel, &format!("reading the {what} of {name}"), || src.read_at(offset, &mut buf))?;
    Ok(buf)
}

/// Checks everything of `source` but the chunk payloads.
pub fn check(mut source: Box<dyn Source>, trust: &Trust, http: &HttpOptions, sink: &dyn Sink, cancel: &Cancel) -> Result<Image> {
    let name = source.name();
    let fe = |err: FormatError| format_error(&name, err);
    let len = source.len()?;
    if len < HEADER_LEN as u64 {
        let mut head = vec![0u8; len as usize];
        if len > 0 {
            source.read_at(0, &mut head).map_err(|e| e.context(&name))?;
        }
        return Err(fe(Header::decode(&head).err().unwrap_or(FormatError::Truncated { want: HEADER_LEN as u64, have: len })));
    }
    let head = read(source.as_mut(), http, sink, cancel, (0, HEADER_LEN as u64), "header")?;
    let header = Header::decode(&head).map_err(fe)?;
    if len != header.file_len {
        return Err(fe(FormatError::Truncated { want: header.file_len, have: len }));
    }
    // Manifest and index are adjacent: one read.
    let meta = read(source.as_mut(), http, sink, cancel, (header.manifest_offset, header.manifest_len + header.index_len), "manifest and index")?;
    let (mbytes, ibytes) = meta.split_at(header.manifest_len as usize);
    let digest = header.compute_digest(mbytes, ibytes);
    if digest != header.digest {
        return Err(Error::damaged(
            STEP,
            format!(
                "{name}: the manifest and index do not match the image digest (header says {}, content gives {}): the image is damaged",
                format::hex(&header.digest),
                format::hex(&digest)
            ),
        )
        .advice(RECOPY));
    }
    if let Some(pin) = trust.pin_sha256 {
        if pin != header.digest {
            return Err(Error::refused(
                STEP,
                format!(
                    "{name}: the image digest {} does not match the pinned sha256 {}; this is not the image expected",
                    format::hex(&header.digest),
                    format::hex(&pin)
                ),
            )
            .advice("check the image or the pin"));
        }
    }
    let mut signature = None;
    let mut signed_by = None;
    if header.signed() {
        let b = read(source.as_mut(), http, sink, cancel, (header.sig_offset, header.sig_len), "signature")?;
        let sig = SignatureBlock::decode(&b).map_err(fe)?;
        let key = VerifyingKey::from_bytes(&sig.public_key)
            .map_err(|_| Error::damaged(STEP, format!("{name}: the signature block's public key is not a valid ed25519 key")).advice(RECOPY))?;
        let s = Signature::from_bytes(&sig.signature);
        if key.verify_strict(&format::signed_message(&header.digest), &s).is_err() {
            return Err(Error::damaged(
                STEP,
                format!(
                    "{name}: bad signature: the ed25519 signature by key {} does not verify over the image digest; the image was altered after signing",
                    format::hex(&sig.public_key)
                ),
            )
            .advice("do not use this image"));
        }
        signed_by = Some(sig.public_key);
        signature = Some(sig);
    }
    if let Some(pin) = trust.pin_key {
        match signed_by {
            None => {
                return Err(Error::refused(STEP, format!("{name}: the image is not signed but key {} is pinned", format::hex(&pin)))
                    .advice("use an image signed with the pinned key"))
            }
            Some(k) if k != pin => {
                return Err(Error::refused(
                    STEP,
                    format!("{name}: the image is signed by key {} but key {} is pinned", format::hex(&k), format::hex(&pin)),
                )
                .advice("use an image signed with the pinned key"))
            }
            _ => {}
        }
    }
    let manifest = Manifest::decode(mbytes, header.chunk_count).map_err(|e| manifest_error(&name, e))?;
    let index = Index::decode(ibytes, &header, &manifest.min_sizes()).map_err(fe)?;
    for (i, p) in manifest.partitions.iter().enumerate() {
        let (a, b) = (p.first_chunk as usize, (p.first_chunk + p.chunk_count) as usize);
        if index.chunks[a..b].iter().any(|c| c.partition as usize != i) {
            return Err(fe(FormatError::Index(format!("partition {i}'s chunks {a}..{b} belong to other partitions"))));
        }
        let data: u64 = index.chunks[a..b].iter().map(|c| u64::from(c.logical_len)).sum();
        if data != p.data_bytes {
            return Err(fe(FormatError::Index(format!("partition {i} holds {data} bytes, the manifest says {}", p.data_bytes))));
        }
    }
    Ok(Image { source, name, header, manifest, index, signature, signed_by })
}
