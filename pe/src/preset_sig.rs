//! Preset signatures: ed25519 over a fixed prefix ([`DOMAIN`]) followed by the preset's exact
//! bytes, kept beside the preset as `FILE.sig`. A PE built with a preset key runs a preset
//! fetched from a URL only when `URL.sig` verifies against that key (`boot::preset_fetch`).
//!
//! The `.sig` file is text: the signature as 128 hex digits on its first line; a second line
//! may carry the signer's public key (64 hex digits) for people to read. Verifiers never take
//! the key from the file: the second line only makes a refusal's message more useful.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::{Error, Hint, Result};
use crate::image::format::{hex, unhex};
use crate::step::Step;

/// What is signed before the preset's bytes, so a preset signature can never pass as another
/// kind of signature made with the same key (an image's, say) or the other way round.
pub const DOMAIN: &[u8] = b"inplace preset v1\0";
/// The signature's file name is the preset's with this added (and its URL likewise).
pub const SUFFIX: &str = ".sig";
/// A `.sig` file is small; anything larger is not one.
pub const SIG_LIMIT: u64 = 4096;

const STEP: Step = Step::Preset;

/// The bytes the signature covers: [`DOMAIN`] then the preset, byte for byte.
pub fn message(preset: &[u8]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(preset);
    m
}

/// The `.sig` file's text for `preset`, signed with the secret key `secret`: the signature's
/// hex, then the public key's hex, each on a line.
pub fn sign(secret: &[u8; 32], preset: &[u8]) -> String {
    let key = SigningKey::from_bytes(secret);
    let sig = key.sign(&message(preset));
    format!("{}\n{}\n", hex(&sig.to_bytes()), hex(&key.verifying_key().to_bytes()))
}

/// A `.sig` file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigFile {
    pub signature: [u8; 64],
    /// The key its second line names, if it has one: for messages only, never for trust.
    pub claimed_key: Option<[u8; 32]>,
}

/// What is wrong with a `.sig` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("it is {0} bytes long, a signature file is under {SIG_LIMIT}")]
    TooLong(usize),
    #[error("it is not text")]
    NotText,
    #[error("it is empty")]
    Empty,
    #[error("its first line is not 128 hex digits (it has {0} characters)")]
    FirstLine(usize),
    #[error("its second line is not a public key (64 hex digits)")]
    SecondLine,
    #[error("it has {0} lines; a signature file has the signature and at most the key")]
    Lines(usize),
}

/// Parses a `.sig` file's bytes.
pub fn parse(bytes: &[u8]) -> std::result::Result<SigFile, Malformed> {
    if bytes.len() as u64 > SIG_LIMIT {
        return Err(Malformed::TooLong(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Malformed::NotText)?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let is_hex = |l: &str, n: usize| l.len() == n && l.bytes().all(|b| b.is_ascii_hexdigit());
    let (first, rest) = lines.split_first().ok_or(Malformed::Empty)?;
    let signature = Some(first).filter(|l| is_hex(l, 128)).and_then(|l| unhex::<64>(l)).ok_or(Malformed::FirstLine(first.chars().count()))?;
    let claimed_key = match rest {
        [] => None,
        [key] => Some(Some(key).filter(|k| is_hex(k, 64)).and_then(|k| unhex::<32>(k)).ok_or(Malformed::SecondLine)?),
        _ => return Err(Malformed::Lines(lines.len())),
    };
    Ok(SigFile { signature, claimed_key })
}

/// Whether `signature` is `key`'s over `preset`.
pub fn verifies(key: &[u8; 32], preset: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|k| k.verify_strict(&message(preset), &Signature::from_bytes(signature)).is_ok())
}

/// What asking for a preset's signature gave.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// The server had none: its answer, e.g. `404 Not Found`.
    Missing { status: &'a str },
    /// The `.sig` file's bytes.
    Found(&'a [u8]),
}

/// Checks `preset` (the exact bytes read from `source`) against `key`, given what was found at
/// `sig_source`. The refusals name both and say what is wrong.
pub fn check(source: &str, preset: &[u8], sig_source: &str, answer: Answer, key: &[u8; 32]) -> Result<()> {
    let refuse = |problem: String| Error::refused(STEP, problem).hint(Hint::SignPreset);
    let bytes = match answer {
        Answer::Missing { status } => {
            return Err(refuse(format!(
                "the preset {source} has no signature: {sig_source} answered HTTP {status}, and this PE runs a preset from the \
                 network only when it is signed with the PE's preset key {}",
                hex(key)
            )))
        }
        Answer::Found(b) => b,
    };
    let sig = parse(bytes).map_err(|why| refuse(format!("the preset's signature {sig_source} is malformed: {why}")))?;
    if verifies(key, preset, &sig.signature) {
        return Ok(());
    }
    let claim = match sig.claimed_key {
        Some(k) if &k != key => format!(" (the signature file names key {}, which is another key)", hex(&k)),
        _ => " (the preset was changed after it was signed, or it was signed with another key)".into(),
    };
    Err(refuse(format!(
        "the preset {source} does not verify against this PE's preset key {}: its signature {sig_source} is not that key's over these bytes{claim}",
        hex(key)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];
    const OTHER: [u8; 32] = [9; 32];
    const PRESET: &[u8] = b"name = \"lab\"\nconfirm = false\n";

    fn public(secret: &[u8; 32]) -> [u8; 32] {
        SigningKey::from_bytes(secret).verifying_key().to_bytes()
    }

    fn check_with(preset: &[u8], answer: Answer) -> Result<()> {
        check("http://h/p.toml", preset, "http://h/p.toml.sig", answer, &public(&SECRET))
    }

    #[test]
    fn a_signature_round_trips_and_is_domain_separated() {
        let file = sign(&SECRET, PRESET);
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!((lines.len(), lines[0].len(), lines[1].len()), (2, 128, 64));
        assert!(file.ends_with('\n'));
        let parsed = parse(file.as_bytes()).unwrap();
        assert_eq!(parsed.claimed_key, Some(public(&SECRET)));
        assert!(verifies(&public(&SECRET), PRESET, &parsed.signature));
        check_with(PRESET, Answer::Found(file.as_bytes())).unwrap();
        // The signature covers the prefix: the same key's plain signature over the bytes fails.
        let plain = SigningKey::from_bytes(&SECRET).sign(PRESET).to_bytes();
        assert!(!verifies(&public(&SECRET), PRESET, &plain));
        // The first line alone, CRLF endings and upper case are the same signature.
        let first = format!("{}\r\n", lines[0].to_uppercase());
        check_with(PRESET, Answer::Found(first.as_bytes())).unwrap();
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let file = sign(&SECRET, PRESET);
        let mut changed = PRESET.to_vec();
        changed[8] ^= 1;
        let e = check_with(&changed, Answer::Found(file.as_bytes())).unwrap_err();
        assert_eq!((e.step, e.kind, e.hints.clone()), (Step::Preset, crate::error::Kind::Refused, vec![Hint::SignPreset]));
        assert!(e.problem.contains("does not verify against this PE's preset key"), "{e}");
        assert!(e.problem.contains("changed after it was signed"), "{e}");
    }

    #[test]
    fn another_key_is_refused_and_named() {
        let file = sign(&OTHER, PRESET);
        let e = check_with(PRESET, Answer::Found(file.as_bytes())).unwrap_err();
        assert!(e.problem.contains("does not verify against this PE's preset key"), "{e}");
        assert!(e.problem.contains(&format!("names key {}", hex(&public(&OTHER)))), "{e}");
        // A second line naming the PE's own key is not believed.
        let lying = format!("{}\n{}\n", file.lines().next().unwrap(), hex(&public(&SECRET)));
        let e = check_with(PRESET, Answer::Found(lying.as_bytes())).unwrap_err();
        assert!(e.problem.contains("does not verify"), "{e}");
    }

    #[test]
    fn a_missing_signature_names_its_url_and_the_status() {
        let e = check_with(PRESET, Answer::Missing { status: "404 Not Found" }).unwrap_err();
        assert!(e.problem.contains("http://h/p.toml.sig answered HTTP 404 Not Found"), "{e}");
        assert_eq!(e.hints, [Hint::SignPreset]);
    }

    #[test]
    fn malformed_signature_files_say_what_is_wrong() {
        let good = sign(&SECRET, PRESET);
        let first = good.lines().next().unwrap();
        for (bytes, why) in [
            (b"".to_vec(), "it is empty"),
            (b"name = \"lab\"\n".to_vec(), "first line is not 128 hex digits"),
            (first.as_bytes()[..126].to_vec(), "first line is not 128 hex digits"),
            (format!("{first}\nnot a key\n").into_bytes(), "second line is not a public key"),
            (format!("{good}{first}\n").into_bytes(), "it has 3 lines"),
            (vec![0xff, 0xfe], "it is not text"),
            (vec![b'a'; 5000], "5000 bytes long"),
        ] {
            let e = check_with(PRESET, Answer::Found(&bytes)).unwrap_err();
            assert!(e.problem.contains("http://h/p.toml.sig is malformed") && e.problem.contains(why), "{why}: {e}");
        }
    }
}
