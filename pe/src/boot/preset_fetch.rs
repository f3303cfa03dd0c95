//! A preset named by a URL (`inplace.preset=http://…`), and the PE's trust in it. A PE built
//! with a preset key (`scripts/build-pe --preset-key`, the key at [`KEY_IN_PE`]) runs such a
//! preset only when `URL.sig`, fetched from the same server, verifies against that key over
//! the exact bytes fetched; it refuses before the preset is parsed, so before any disk is
//! touched. Without a key a network preset runs as before, and the log says it was not
//! checked. Presets from the boot medium or the stick are not network presets: they are not
//! checked here.

use std::path::Path;

use crate::error::{Error, Result};
use crate::image::format::hex;
use crate::net::http::{self, Small};
use crate::preset_sig::{self, Answer};
use crate::progress::Sink;
use crate::step::Step;

/// Where a PE built with a preset key keeps it: 64 hex digits, as `inplace image keygen`
/// prints the public key.
pub const KEY_IN_PE: &str = "/etc/inplace/preset-key.pub";
/// A preset larger than this is not a preset.
pub const PRESET_LIMIT: u64 = 1 << 20;

/// The PE's preset key at `path`: `None` when the PE was built without one. A key file that
/// is there but unreadable or not a key is an error: the PE must not fall back to trusting
/// everything.
pub fn baked_key(path: &Path) -> Result<Option<[u8; 32]>> {
    if !path.exists() {
        return Ok(None);
    }
    crate::image::create::read_public_key(path)
        .map(Some)
        .map_err(|e| Error::refused(Step::Preset, format!("this PE's preset key {}: {e}", path.display())).advice("rebuild the PE with a public key from inplace image keygen"))
}

/// Fetches the preset at `url` and, when `key` is given, its signature at `url` + `.sig`,
/// and returns the preset's text only when the signature is `key`'s over the bytes fetched.
pub fn fetch(url: &str, key: Option<&[u8; 32]>, sink: &dyn Sink) -> Result<String> {
    let bytes = match http::get_small(url, PRESET_LIMIT)? {
        Small::Body(b) => b,
        Small::ClientError(status) => {
            return Err(Error::refused(Step::Preset, format!("fetching {url}: the server answered {status}")).advice("check the URL in inplace.preset="))
        }
    };
    match key {
        Some(key) => {
            let sig_url = format!("{url}{}", preset_sig::SUFFIX);
            let sig = http::get_small(&sig_url, preset_sig::SIG_LIMIT)?;
            let answer = match &sig {
                Small::Body(b) => Answer::Found(b),
                Small::ClientError(status) => Answer::Missing { status },
            };
            preset_sig::check(url, &bytes, &sig_url, answer, key)?;
            sink.log(&format!("preset {url}: signature {sig_url} verified against this PE's preset key {}", hex(key)));
        }
        None => sink.log(&format!("preset {url} runs unsigned: this PE has no preset key, so no signature is asked for")),
    }
    String::from_utf8(bytes).map_err(|_| Error::refused(Step::Preset, format!("the preset {url} is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_file_is_no_key_and_a_bad_one_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("preset-key.pub");
        assert_eq!(baked_key(&p).unwrap(), None);
        std::fs::write(&p, "not a key\n").unwrap();
        let e = baked_key(&p).unwrap_err();
        assert!(e.problem.contains("this PE's preset key") && e.problem.contains("64 hex digits"), "{e}");
        // All zeros is a weak key that any signature could be made to match.
        std::fs::write(&p, format!("{}\n", "0".repeat(64))).unwrap();
        assert!(baked_key(&p).unwrap_err().problem.contains("not a usable ed25519 public key"));
        let public = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
        std::fs::write(&p, format!("{}\n", hex(&public))).unwrap();
        assert_eq!(baked_key(&p).unwrap(), Some(public));
    }
}
