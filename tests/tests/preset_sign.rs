//! Signed presets on the host: keys from `inplace image keygen`, `FILE.sig` from `inplace
//! preset sign`, checked by `inplace preset verify`; and a preset fetched over HTTP from a real
//! server on 127.0.0.1 through `boot::preset_fetch::fetch`, the function the PE calls: with the
//! PE's key it returns the preset only when `URL.sig` verifies, and refuses a changed byte, a
//! missing `.sig` (404), a malformed one and one made with another key, each saying so; without
//! a key it returns the preset and logs that it ran unsigned.

use std::path::Path;
use std::process::Command;

use inplace::boot::preset_fetch;
use inplace::error::{Error, Hint, Kind};
use inplace::image::format::unhex;
use inplace::progress::{Collect, Event};
use inplace_tests::http_server::Server;
use inplace_tests::inplace_bin;
use inplace_tests::signing::{keygen, sign_preset, Keys};

const PRESET: &str = "name = \"lab B\"\nconfirm = false\n\n[disk]\nserial = \"OTHER-DISK\"\n\n[image]\nsource = \"http://10.0.2.2:1/x.inplace\"\nsha256 = \"6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f6c2f\"\n";

fn key(keys: &Keys) -> [u8; 32] {
    unhex::<32>(&keys.hex).unwrap()
}

fn logs(c: &Collect) -> Vec<String> {
    c.events().into_iter().filter_map(|e| if let Event::Log { message } = e { Some(message) } else { None }).collect()
}

/// `inplace preset verify --key PUB FILE`: exit status and what it said.
fn verify(keys: &Keys, file: &Path) -> (bool, String) {
    let o = Command::new(inplace_bin()).args(["preset", "verify", "--key"]).arg(&keys.public).arg(file).output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn sign_writes_a_sig_that_verify_and_the_pe_accept() {
    let d = tempfile::tempdir().unwrap();
    let (pe, other) = (keygen(d.path(), "pe"), keygen(d.path(), "other"));
    let file = d.path().join("lab.toml");
    std::fs::write(&file, PRESET).unwrap();
    let sig = sign_preset(&pe, &file);
    let text = std::fs::read_to_string(&sig).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!((lines.len(), lines[0].len(), lines[1]), (2, 128, pe.hex.as_str()), "{text}");
    assert!(text.ends_with('\n'));
    let (ok, said) = verify(&pe, &file);
    assert!(ok, "{said}");
    let (ok, said) = verify(&other, &file);
    assert!(!ok && said.contains("does not verify against") && said.contains("inplace preset sign --key"), "{said}");
    std::fs::write(&file, PRESET.replace("OTHER-DISK", "OLDBOX-1XX")).unwrap();
    let (ok, said) = verify(&pe, &file);
    assert!(!ok && said.contains("does not verify against") && said.contains("changed after it was signed"), "{said}");
}

/// The served folder: `good.toml` signed with the PE's key; `tampered.toml` signed, then one
/// byte changed; `unsigned.toml` without a `.sig`; `malformed.toml` whose `.sig` is not one;
/// `other.toml` signed with another key.
struct Served {
    _dir: tempfile::TempDir,
    server: Server,
    pe: Keys,
    other: Keys,
}

impl Served {
    fn new() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let (pe, other) = (keygen(dir.path(), "pe"), keygen(dir.path(), "other"));
        let root = dir.path().join("www");
        std::fs::create_dir(&root).unwrap();
        let put = |name: &str, signer: Option<&Keys>| {
            let f = root.join(name);
            std::fs::write(&f, PRESET).unwrap();
            signer.map(|k| sign_preset(k, &f));
            f
        };
        put("good.toml", Some(&pe));
        put("unsigned.toml", None);
        put("other.toml", Some(&other));
        let tampered = put("tampered.toml", Some(&pe));
        // Someone on the wire points the wipe at another disk: one byte.
        std::fs::write(&tampered, PRESET.replace("serial = \"OTHER-DISK\"", "serial = \"OTHER-DISC\"")).unwrap();
        put("malformed.toml", None);
        std::fs::write(root.join("malformed.toml.sig"), "-----BEGIN SIGNATURE-----\n").unwrap();
        Served { server: Server::start_dir(root), _dir: dir, pe, other }
    }

    fn fetch(&self, name: &str, signer: Option<&Keys>) -> (Result<String, Error>, Vec<String>) {
        let sink = Collect::default();
        let k = signer.map(key);
        let r = preset_fetch::fetch(&self.server.url(name), k.as_ref(), &sink);
        (r, logs(&sink))
    }

    /// The refusal of `name` by the PE's key, which must say each of `wants`.
    fn refused(&self, name: &str, wants: &[&str]) {
        let (r, _) = self.fetch(name, Some(&self.pe));
        let e = r.expect_err(&format!("{name} was accepted"));
        assert_eq!((e.kind, e.hints.clone()), (Kind::Refused, vec![Hint::SignPreset]), "{e}");
        let said = inplace::ui::words::error(&e);
        for w in wants {
            assert!(said.contains(w), "the refusal of {name} does not say {w:?}: {said}");
        }
        assert!(said.contains("Sign the preset with `inplace preset sign`") && said.contains("nothing was written"), "{said}");
        eprintln!("{name}: {said}");
    }
}

#[test]
fn a_keyed_pe_takes_a_network_preset_only_when_its_sig_verifies() {
    let s = Served::new();
    let (text, log) = s.fetch("good.toml", Some(&s.pe));
    assert_eq!(text.unwrap(), PRESET);
    let sig_url = s.server.url("good.toml.sig");
    assert!(log.iter().any(|l| l.contains(&format!("signature {sig_url} verified against this PE's preset key {}", s.pe.hex))), "{log:?}");

    s.refused("tampered.toml", &["does not verify against this PE's preset key", &s.pe.hex, "changed after it was signed"]);
    let missing = format!("{}.sig answered HTTP 404 Not Found", s.server.url("unsigned.toml"));
    s.refused("unsigned.toml", &[&missing, "has no signature"]);
    s.refused("malformed.toml", &[&format!("{} is malformed", s.server.url("malformed.toml.sig")), "first line is not 128 hex digits"]);
    s.refused("other.toml", &["does not verify against this PE's preset key", &format!("names key {}", s.other.hex)]);
}

#[test]
fn a_pe_without_a_key_runs_a_network_preset_unsigned_and_says_so() {
    let s = Served::new();
    for name in ["unsigned.toml", "tampered.toml"] {
        let (text, log) = s.fetch(name, None);
        assert!(text.unwrap().starts_with("name = \"lab B\""));
        assert!(log.iter().any(|l| l.contains("runs unsigned: this PE has no preset key")), "{log:?}");
    }
    // The preset's own URL missing is the usual error, key or not.
    let (r, _) = s.fetch("gone.toml", Some(&s.pe));
    let e = r.unwrap_err();
    assert!(e.problem.contains("gone.toml: the server answered 404 Not Found"), "{e}");
}
