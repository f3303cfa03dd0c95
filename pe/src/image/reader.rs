//! Opening an image: header, manifest, index and signature, each parsed and checked, then the
//! trust policy (digest, pinned hash, signature, pinned key). Nothing is trusted before this
//! returns `Ok`.

use ed25519_dalek::{Signature, VerifyingKey};

use super::format::{self, FormatError, Header, Index, SignatureBlock, HEADER_LEN};
use super::http::{retry, HttpOptions};
use super::manifest::{Manifest, ManifestError};
use super::progress::Progress;
use super::source::{Source, SourceError};

/// What the caller insists on (from the command line or a preset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// The image digest must be exactly this.
    pub pin_sha256: Option<[u8; 32]>,
    /// The image must be signed by this ed25519 key.
    pub pin_key: Option<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{name}: {err}")]
    Format { name: String, err: FormatError },
    #[error("{name}: {err}")]
    Manifest { name: String, err: ManifestError },
    #[error("{name}: {0}", name = .1)]
    Trust(String, String),
}

/// An opened, checked image.
pub struct Image {
    pub source: Box<dyn Source>,
    pub name: String,
    pub header: Header,
    pub manifest: Manifest,
    pub index: Index,
    pub signature: Option<SignatureBlock>,
    /// What the signature check found: `None` unsigned, `Some(true)` valid.
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

fn read(src: &mut dyn Source, opts: &HttpOptions, progress: &dyn Progress, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, SourceError> {
    let n = usize::try_from(len).map_err(|_| SourceError::fatal(format!("{what}: {len} bytes is too large")))?;
    let mut buf = vec![0u8; n];
    let name = src.name();
    retry(opts, progress, &format!("reading the {what} of {name}"), || src.read_at(offset, &mut buf))?;
    Ok(buf)
}

/// Opens `source` and checks everything but the chunk payloads.
pub fn open(mut source: Box<dyn Source>, trust: &Trust, opts: &HttpOptions, progress: &dyn Progress) -> Result<Image, OpenError> {
    let name = source.name();
    let fe = |err: FormatError| OpenError::Format { name: name.clone(), err };
    let len = source.len()?;
    if len < HEADER_LEN as u64 {
        let mut head = vec![0u8; len as usize];
        if len > 0 {
            source.read_at(0, &mut head)?;
        }
        return Err(fe(Header::decode(&head).err().unwrap_or(FormatError::Truncated { want: HEADER_LEN as u64, have: len })));
    }
    let head = read(source.as_mut(), opts, progress, 0, HEADER_LEN as u64, "header")?;
    let header = Header::decode(&head).map_err(fe)?;
    if len != header.file_len {
        return Err(fe(FormatError::Truncated { want: header.file_len, have: len }));
    }
    // Manifest and index are adjacent: one read.
    let meta = read(source.as_mut(), opts, progress, header.manifest_offset, header.manifest_len + header.index_len, "manifest and index")?;
    let (mbytes, ibytes) = meta.split_at(header.manifest_len as usize);
    let digest = header.compute_digest(mbytes, ibytes);
    if digest != header.digest {
        return Err(OpenError::Trust(
            format!(
                "the manifest and index do not match the image digest (header says {}, content gives {}): the image is damaged; re-copy or re-download it",
                format::hex(&header.digest),
                format::hex(&digest)
            ),
            name.clone(),
        ));
    }
    if let Some(pin) = trust.pin_sha256 {
        if pin != header.digest {
            return Err(OpenError::Trust(
                format!(
                    "the image digest {} does not match the pinned sha256 {}; this is not the image the preset expects — check the image or the pin",
                    format::hex(&header.digest),
                    format::hex(&pin)
                ),
                name.clone(),
            ));
        }
    }
    let mut signature = None;
    let mut signed_by = None;
    if header.signed() {
        let b = read(source.as_mut(), opts, progress, header.sig_offset, header.sig_len, "signature")?;
        let sig = SignatureBlock::decode(&b).map_err(fe)?;
        let key = VerifyingKey::from_bytes(&sig.public_key)
            .map_err(|_| OpenError::Trust("the signature block's public key is not a valid ed25519 key".into(), name.clone()))?;
        let s = Signature::from_bytes(&sig.signature);
        if key.verify_strict(&format::signed_message(&header.digest), &s).is_err() {
            return Err(OpenError::Trust(
                format!(
                    "bad signature: the ed25519 signature by key {} does not verify over the image digest; the image was altered after signing — do not use it",
                    format::hex(&sig.public_key)
                ),
                name.clone(),
            ));
        }
        signed_by = Some(sig.public_key);
        signature = Some(sig);
    }
    if let Some(pin) = trust.pin_key {
        match signed_by {
            None => {
                return Err(OpenError::Trust(
                    format!("the image is not signed but key {} is pinned; use an image signed with that key", format::hex(&pin)),
                    name.clone(),
                ))
            }
            Some(k) if k != pin => {
                return Err(OpenError::Trust(
                    format!("the image is signed by key {} but key {} is pinned; use an image signed with the pinned key", format::hex(&k), format::hex(&pin)),
                    name.clone(),
                ))
            }
            _ => {}
        }
    }
    let manifest = Manifest::decode(mbytes, header.chunk_count).map_err(|err| OpenError::Manifest { name: name.clone(), err })?;
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
