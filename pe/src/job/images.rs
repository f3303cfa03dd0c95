//! The images a person can choose from: the preset's `[[images]]`, then the inplace image
//! files found on the image roots (the stick, the boot medium: each root and its `images/`
//! folder), recognised by their magic whatever their extension (`inplace image create` names
//! none; `.img` and `.inplace` are usual). A typed URL is the front end's.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::image::format::MAGIC;
use crate::preset::{ImageSpec, Preset};

/// Where an image choice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The preset's `[[images]]` (or its `[image]`).
    Preset,
    /// A file found on an image root.
    Found,
    /// Typed in by the person at the console.
    Typed,
}

/// One image to offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub spec: ImageSpec,
    pub origin: Origin,
    /// The file's length, when it is a local file.
    pub file_len: Option<u64>,
}

/// The preset's images (its `[image]` first when it is not also in the list), then the image
/// files on `roots` that the preset does not already name.
pub fn choices(preset: Option<&Preset>, roots: &[PathBuf]) -> Vec<Choice> {
    let mut out: Vec<Choice> = Vec::new();
    if let Some(p) = preset {
        let listed = p.image.iter().filter(|i| !p.images.iter().any(|l| l.source == i.source));
        for spec in listed.chain(p.images.iter()) {
            let len = local(&spec.source, roots).and_then(|f| f.metadata().ok()).map(|m| m.len());
            out.push(Choice { spec: spec.clone(), origin: Origin::Preset, file_len: len });
        }
    }
    for root in roots {
        for file in image_files(root) {
            let named = out.iter().any(|c| local(&c.spec.source, roots).is_some_and(|p| same(&p, &file)));
            if named {
                continue;
            }
            let len = file.metadata().ok().map(|m| m.len());
            let name = file.strip_prefix(root).unwrap_or(&file).display().to_string();
            let spec = ImageSpec { name: Some(name), source: file.display().to_string(), sha256: None, key: None };
            out.push(Choice { spec, origin: Origin::Found, file_len: len });
        }
    }
    out
}

/// The image a typed text names: a URL or a path, unpinned (the plan then says so).
pub fn typed(text: &str) -> Choice {
    let source = text.trim().to_string();
    Choice { spec: ImageSpec { name: None, source, sha256: None, key: None }, origin: Origin::Typed, file_len: None }
}

fn same(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The local file a preset source names (as the plan resolves it), if there is one.
fn local(source: &str, roots: &[PathBuf]) -> Option<PathBuf> {
    if source.contains("://") {
        return None;
    }
    let p = Path::new(source);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    roots.iter().map(|r| r.join(source)).find(|p| p.exists())
}

/// Inplace image files in `root` and `root/images`, by name.
pub fn image_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [root.to_path_buf(), root.join("images")] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file() && is_image(p)).collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// Whether `path` starts with the inplace image magic.
pub fn is_image(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_list_comes_first_then_files_found_by_their_magic() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("images")).unwrap();
        let mut img = MAGIC.to_vec();
        img.resize(4096, 0);
        std::fs::write(root.join("images/debian.img"), &img).unwrap();
        std::fs::write(root.join("new.inplace"), &img).unwrap();
        std::fs::write(root.join("images/raw-disk.img"), vec![0u8; 4096]).unwrap();
        std::fs::write(root.join("preset.toml"), b"name = 1").unwrap();
        let preset = Preset {
            name: "desk".into(),
            images: vec![
                ImageSpec { name: Some("Debian".into()), source: "images/debian.img".into(), sha256: Some("ab".repeat(32)), key: None },
                ImageSpec { name: Some("Lab".into()), source: "http://10.0.0.5/lab.img".into(), sha256: None, key: None },
            ],
            ..Preset::default()
        };
        let c = choices(Some(&preset), &[root.to_path_buf()]);
        let names: Vec<(&str, Origin)> = c.iter().map(|c| (c.spec.label(), c.origin)).collect();
        assert_eq!(names, [("Debian", Origin::Preset), ("Lab", Origin::Preset), ("new.inplace", Origin::Found)]);
        assert_eq!(c[0].file_len, Some(4096));
        assert_eq!(c[1].file_len, None);
        assert_eq!(choices(None, &[root.to_path_buf()]).len(), 2, "the raw disk image is no inplace image");
        assert_eq!(typed(" http://h/x.img ").spec.source, "http://h/x.img");
    }
}
