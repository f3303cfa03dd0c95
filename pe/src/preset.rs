//! The preset: a TOML file that drives an unattended run (or pre-fills the TUI). It is read from
//! the USB stick's `INPLACE` partition, the boot medium (`/inplace/preset.toml`) or a URL.

use serde::{Deserialize, Serialize};

pub use crate::migrate::job_info::RestoreChoices;

/// A parsed preset. Unknown keys are errors: a misspelt key must not be silently ignored on an
/// unattended run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Shown on every console as `inplace: preset <name>` and kept in the reports.
    pub name: String,
    /// `false` (explicitly) lets an unattended run write to disks without asking.
    pub confirm: Option<bool>,
    /// What the PE does when the run ends.
    #[serde(default)]
    pub finish: Finish,
    /// `[migrate]`: changes to the migration rules (users, globs, caps).
    #[serde(default, skip_serializing_if = "is_default")]
    pub migrate: crate::migrate::rules::Overrides,
    /// `[restore]`: how the new OS's first boot puts the files back.
    #[serde(default, skip_serializing_if = "is_default")]
    pub restore: RestoreChoices,
    /// Which disk the job migrates: `"os"` (the one disk holding a detected OS, the default) or
    /// a `[disk]` table matching serial, WWN, model or size.
    #[serde(default, skip_serializing_if = "is_default")]
    pub disk: DiskSelector,
    /// `[image]`: the new OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// `[[images]]`: the images the TUI offers to choose from (each with a `name`), besides
    /// the image files it finds on the stick and the boot medium and a typed URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageSpec>,
    /// The partitions the image takes; default: the OS's own (ESP, root, MSR, recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<Vec<u32>>,
    /// `[store]`: the store's size margin and what becomes of it after the restore.
    #[serde(default, skip_serializing_if = "is_default")]
    pub store: StoreSpec,
    /// The OEM code page FAT labels are read in (437 or 850); the kernel's `inplace.codepage=`
    /// wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codepage: Option<u16>,
    /// `[report]`: the collector the job's events are POSTed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::report::ReportConfig>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    #[default]
    Poweroff,
    Reboot,
    /// Stay in the TUI.
    Wait,
}

/// Which disk a job takes. Every given field must match; a selector that matches no disk or
/// more than one is refused before anything is written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub enum DiskSelector {
    /// The one disk holding a detected OS.
    #[default]
    Os,
    Match(DiskMatch),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
    /// Matches when the disk's model contains this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `"500G"` or a byte count: matches disks within 2 % of it (vendors round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

impl<'de> Deserialize<'de> for DiskSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DiskSelector;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"os\" or a table with serial, wwn, model or size")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DiskSelector, E> {
                match v {
                    "os" => Ok(DiskSelector::Os),
                    other => Err(E::custom(format!(
                        "disk = {other:?} is not known: use \"os\", or a [disk] table with serial, wwn, model or size"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<DiskSelector, A::Error> {
                let m = DiskMatch::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if m == DiskMatch::default() {
                    return Err(serde::de::Error::custom("the [disk] table is empty: give serial, wwn, model or size"));
                }
                if let Some(s) = &m.size {
                    crate::units::parse_size(s).map_err(serde::de::Error::custom)?;
                }
                Ok(DiskSelector::Match(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// The new OS image: where it is, and how it is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// What the TUI calls it (`[[images]]`); the source when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An `http://` or `https://` URL, an absolute path, or a path relative to the stick's
    /// `INPLACE` partition or, failing that, the boot medium.
    pub source: String,
    /// The image's digest (`inplace image info` prints it): 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "hex64")]
    pub sha256: Option<String>,
    /// The ed25519 public key the image must be signed with: 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "hex64")]
    pub key: Option<String>,
}

impl ImageSpec {
    pub fn is_remote(&self) -> bool {
        self.source.starts_with("http://") || self.source.starts_with("https://")
    }

    pub fn pinned(&self) -> bool {
        self.sha256.is_some() || self.key.is_some()
    }

    /// The name to show: `name`, else the source.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.source)
    }
}

/// The store: how much room beyond the estimate, and what becomes of it after the restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// Room added to the capture estimate: `"10%"` (the default) or a size such as `"2G"`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "margin")]
    pub margin: Option<String>,
    /// `keep`, `empty` or `delete` (the restore's cleanup).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "after")]
    pub after: Option<String>,
}

fn hex64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let t = s.trim().to_ascii_lowercase();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(serde::de::Error::custom(format!("{s:?} is not 64 hex digits")));
    }
    Ok(Some(t))
}

fn margin<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Margin::parse(&s).map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

fn after<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "keep" | "empty" | "delete" => Ok(Some(s)),
        _ => Err(serde::de::Error::custom(format!("after = {s:?}: use \"keep\", \"empty\" or \"delete\""))),
    }
}

/// A store margin: a share of the estimate, or a fixed size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Margin {
    Percent(f64),
    Bytes(u64),
}

impl Margin {
    pub const DEFAULT: Margin = Margin::Percent(10.0);

    pub fn parse(s: &str) -> Result<Margin, crate::units::BadValue> {
        match s.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=1000.0).contains(&v) => Ok(Margin::Percent(v)),
                _ => Err(crate::units::BadValue(format!("store margin {s:?}: a percentage from 0% to 1000%, or a size such as 2G"))),
            },
            None => crate::units::parse_size(s).map(Margin::Bytes),
        }
    }

    /// `bytes` with the margin added.
    pub fn apply(self, bytes: u64) -> u64 {
        match self {
            Margin::Percent(p) => bytes.saturating_add((bytes as f64 * p / 100.0).ceil() as u64),
            Margin::Bytes(b) => bytes.saturating_add(b),
        }
    }
}

/// A preset that could not be read, with where and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("preset {source_name}, line {line}, column {column}: {message}")]
pub struct PresetError {
    pub source_name: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Preset {
    /// Parses `text`, naming `source_name` (a path or URL) in any error.
    pub fn parse(text: &str, source_name: &str) -> Result<Preset, PresetError> {
        let preset: Preset = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            PresetError { source_name: source_name.to_string(), line, column, message: e.message().trim().to_string() }
        })?;
        if preset.name.trim().is_empty() || preset.name.chars().any(char::is_control) {
            return Err(PresetError {
                source_name: source_name.to_string(),
                line: 1,
                column: 1,
                message: "`name` must be a non-empty line of text".into(),
            });
        }
        if let Some(cp) = preset.codepage.filter(|cp| !crate::codepage::KNOWN.contains(cp)) {
            let (line, column) = text.find("codepage").map(|at| line_col(text, at)).unwrap_or((1, 1));
            return Err(PresetError {
                source_name: source_name.to_string(),
                line,
                column,
                message: crate::codepage::Unknown(cp).to_string(),
            });
        }
        if let Some(problem) = preset.report.as_ref().and_then(crate::report::config::problem) {
            let (line, column) = text.find("[report]").map(|at| line_col(text, at)).unwrap_or((1, 1));
            return Err(PresetError { source_name: source_name.to_string(), line, column, message: problem });
        }
        Ok(preset)
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_table_is_checked() {
        let p = Preset::parse("name = \"x\"\n[report]\nurl = \"http://10.0.0.1/in\"\ntoken = \"t\"\ninterval = 5\n", "p").unwrap();
        let r = p.report.unwrap();
        assert_eq!((r.url.as_str(), r.token.as_deref(), r.interval_secs()), ("http://10.0.0.1/in", Some("t"), 5));
        let e = Preset::parse("name = \"x\"\n[report]\nurl = \"ftp://x\"\n", "p").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "[report] url = \"ftp://x\" is not an http:// or https:// URL"));
        let e = Preset::parse("name = \"x\"\n[report]\nurl = \"https://x/\"\nca = \"junk\"\n", "p").unwrap_err();
        assert!(e.message.starts_with("[report] ca: the CA holds no certificate"), "{}", e.message);
    }

    #[test]
    fn a_codepage_must_be_known() {
        assert_eq!(Preset::parse("name = \"x\"\ncodepage = 850\n", "p").unwrap().codepage, Some(850));
        let e = Preset::parse("name = \"x\"\ncodepage = 1252\n", "p").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("code page 1252 is not known"), "{}", e.message);
    }

    #[test]
    fn migrate_and_restore_tables() {
        let text = "name = \"fleet\"\n[migrate]\nusers = [\"alice\"]\n[migrate.user.alice]\nexclude = [\"Videos/**\"]\n[restore]\ncreate_users = true\nconflict = \"overwrite\"\npasswords = false\n";
        let p = Preset::parse(text, "p.toml").unwrap();
        assert_eq!(p.migrate.users, ["alice"]);
        assert_eq!(p.migrate.user["alice"].exclude, ["Videos/**"]);
        assert_eq!(p.restore.create_users, Some(true));
        assert_eq!(p.restore.passwords, Some(false));
        let e = Preset::parse("name = \"x\"\n[migrate]\nusres = []\n", "p.toml").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn a_list_of_images_to_choose_from() {
        let d = "ab".repeat(32);
        let text = format!("name = \"desk\"\n[[images]]\nname = \"Debian 12\"\nsource = \"images/debian-12.img\"\nsha256 = \"{d}\"\n[[images]]\nname = \"Lab\"\nsource = \"http://10.0.0.5/lab.img\"\nkey = \"{d}\"\n");
        let p = Preset::parse(&text, "p").unwrap();
        assert_eq!(p.images.len(), 2);
        assert_eq!((p.images[0].label(), p.images[0].source.as_str()), ("Debian 12", "images/debian-12.img"));
        assert!(p.images[1].is_remote() && p.images[1].pinned());
        let e = Preset::parse("name = \"x\"\n[[images]]\nname = \"a\"\nsorce = \"b\"\n", "p").unwrap_err();
        assert!(e.message.contains("sorce"), "{e}");
    }

    #[test]
    fn a_minimal_preset() {
        let p = Preset::parse("name = \"lab-a\"\nconfirm = false\nfinish = \"reboot\"\n", "preset.toml").unwrap();
        assert_eq!(p, Preset { name: "lab-a".into(), confirm: Some(false), finish: Finish::Reboot, ..Default::default() });
    }

    #[test]
    fn syntax_errors_name_the_file_line_and_column() {
        let e = Preset::parse("name = \"lab-a\"\nconfirm = fals\n", "/media/INPLACE/preset.toml").unwrap_err();
        assert_eq!((e.line, e.column), (2, 11), "{e}");
        assert!(e.to_string().starts_with("preset /media/INPLACE/preset.toml, line 2, column 11: "), "{e}");
    }

    /// Every example and fragment in `docs/preset.md` parses (with its hex placeholders filled in).
    #[test]
    fn the_documented_examples_parse() {
        let doc = include_str!("../../docs/preset.md");
        let mut examples = 0;
        for block in doc.split("```toml\n").skip(1) {
            let text = block.split("```").next().unwrap_or("");
            let text = text.replace("6c2f…(64 hex digits)…", &"ab".repeat(32)).replace("9e1d…(64 hex digits)…", &"cd".repeat(32));
            if !text.starts_with("name = ") {
                // A fragment: it parses under a name.
                Preset::parse(&format!("name = \"fragment\"\n{text}"), "docs/preset.md").unwrap_or_else(|e| panic!("{e}\n{text}"));
                continue;
            }
            let p = Preset::parse(&text, "docs/preset.md").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert!(p.image.is_some(), "{text}");
            examples += 1;
        }
        assert_eq!(examples, 3);
    }

    #[test]
    fn job_fields() {
        let text = "name = \"lab\"\nconfirm = false\nreplace = [1, 2]\n[disk]\nserial = \"S123\"\nsize = \"500G\"\n\
                    [image]\nsource = \"http://10.0.2.2/new.img\"\nsha256 = \"AB\"\n";
        let e = Preset::parse(text, "p").unwrap_err();
        assert_eq!((e.line, e.message.contains("64 hex")), (9, true), "{e}");
        let text = text.replace("\"AB\"", &format!("\"{}\"", "Ab".repeat(32)));
        let p = Preset::parse(&text, "p").unwrap();
        assert_eq!(p.disk, DiskSelector::Match(DiskMatch { serial: Some("S123".into()), size: Some("500G".into()), ..Default::default() }));
        let image = p.image.unwrap();
        assert!(image.is_remote() && image.pinned());
        assert_eq!(image.sha256.unwrap(), "ab".repeat(32));
        assert_eq!(p.replace, Some(vec![1, 2]));
        assert_eq!(Preset::parse("name = \"x\"\ndisk = \"os\"\n", "p").unwrap().disk, DiskSelector::Os);
        let e = Preset::parse("name = \"x\"\ndisk = \"first\"\n", "p").unwrap_err();
        assert!(e.message.contains("\"first\" is not known") && e.line == 2, "{e}");
        assert!(Preset::parse("name = \"x\"\n[disk]\n", "p").unwrap_err().message.contains("empty"));
        let e = Preset::parse("name = \"x\"\n[store]\nafter = \"shred\"\n", "p").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = Preset::parse("name = \"x\"\n[store]\nmargin = \"lots\"\n", "p").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let p = Preset::parse("name = \"x\"\n[store]\nmargin = \"25%\"\nafter = \"delete\"\n", "p").unwrap();
        assert_eq!(Margin::parse(p.store.margin.as_deref().unwrap()).unwrap().apply(400), 500);
        assert_eq!(Margin::parse("1M").unwrap().apply(1), (1 << 20) + 1);
    }

    #[test]
    fn unknown_keys_and_missing_names_are_errors() {
        let e = Preset::parse("name = \"x\"\nconfrim = false\n", "p").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("confrim"), "{e}");
        assert!(Preset::parse("confirm = true\n", "p").unwrap_err().message.contains("name"));
        assert!(Preset::parse("name = \"\"\n", "p").is_err());
    }
}
