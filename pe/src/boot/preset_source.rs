//! Where the preset comes from, in order: `inplace.preset=` on the kernel command line (a URL or
//! a path), the stick's `INPLACE` partition, then `/inplace/preset.toml` on the boot medium.

use std::path::Path;

use crate::preset::{Preset, PresetError};

/// The file name on the `INPLACE` partition and under `/inplace/` on the ISO.
pub const PRESET_FILE: &str = "preset.toml";

#[derive(Debug)]
pub enum Found {
    None,
    Preset { preset: Preset, source: String },
}

/// Finds and parses the preset. `fetch` reads a URL (the network must be up); it is only
/// called when the command line names one.
pub fn load(
    cmdline_preset: Option<&str>,
    config_root: Option<&Path>,
    medium_root: Option<&Path>,
    fetch: &dyn Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<Found> {
    let parse = |text: &str, source: String| -> anyhow::Result<Found> {
        let preset = Preset::parse(text, &source).map_err(|e: PresetError| anyhow::anyhow!(e))?;
        Ok(Found::Preset { preset, source })
    };
    if let Some(p) = cmdline_preset {
        if p.starts_with("http://") || p.starts_with("https://") {
            let text = fetch(p)?;
            return parse(&text, p.to_string());
        }
        let text = std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("cannot read the preset {p} named by inplace.preset=: {e}"))?;
        return parse(&text, p.to_string());
    }
    let candidates = [
        config_root.map(|r| (r.join(PRESET_FILE), format!("INPLACE:/{PRESET_FILE} (the stick's INPLACE partition)"))),
        medium_root.map(|r| (r.join("inplace").join(PRESET_FILE), format!("/inplace/{PRESET_FILE} on the boot medium"))),
    ];
    for (path, name) in candidates.into_iter().flatten() {
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse(&text, name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => anyhow::bail!("cannot read the preset {name}: {e}"),
        }
    }
    Ok(Found::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_fetch(_: &str) -> anyhow::Result<String> {
        unreachable!("no URL here")
    }

    #[test]
    fn the_stick_wins_over_the_iso() {
        let d = tempfile::tempdir().unwrap();
        let (cfg, iso) = (d.path().join("cfg"), d.path().join("iso"));
        std::fs::create_dir_all(iso.join("inplace")).unwrap();
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(iso.join("inplace/preset.toml"), "name = \"from-iso\"\n").unwrap();
        let Found::Preset { preset, .. } = load(None, Some(&cfg), Some(&iso), &no_fetch).unwrap() else { panic!() };
        assert_eq!(preset.name, "from-iso");
        std::fs::write(cfg.join("preset.toml"), "name = \"from-stick\"\n").unwrap();
        let Found::Preset { preset, source } = load(None, Some(&cfg), Some(&iso), &no_fetch).unwrap() else { panic!() };
        assert_eq!((preset.name.as_str(), source.as_str()), ("from-stick", "INPLACE:/preset.toml (the stick's INPLACE partition)"));
        assert!(matches!(load(None, None, None, &no_fetch).unwrap(), Found::None));
    }

    #[test]
    fn a_url_is_fetched_and_errors_name_it() {
        let fetch = |u: &str| -> anyhow::Result<String> {
            assert_eq!(u, "http://10.0.2.2:8000/p.toml");
            Ok("name = [\n".into())
        };
        let e = load(Some("http://10.0.2.2:8000/p.toml"), None, None, &fetch).unwrap_err().to_string();
        assert!(e.starts_with("preset http://10.0.2.2:8000/p.toml, line 1"), "{e}");
    }
}
