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
    fn migrate_and_restore_tables() {
        let text = "name = \"fleet\"\n[migrate]\nusers = [\"alice\"]\n[migrate.user.alice]\nexclude = [\"Videos/**\"]\n[restore]\ncreate_users = true\nconflict = \"overwrite\"\n";
        let p = Preset::parse(text, "p.toml").unwrap();
        assert_eq!(p.migrate.users, ["alice"]);
        assert_eq!(p.migrate.user["alice"].exclude, ["Videos/**"]);
        assert_eq!(p.restore.create_users, Some(true));
        let e = Preset::parse("name = \"x\"\n[migrate]\nusres = []\n", "p.toml").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
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

    #[test]
    fn unknown_keys_and_missing_names_are_errors() {
        let e = Preset::parse("name = \"x\"\nconfrim = false\n", "p").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("confrim"), "{e}");
        assert!(Preset::parse("confirm = true\n", "p").unwrap_err().message.contains("name"));
        assert!(Preset::parse("name = \"\"\n", "p").is_err());
    }
}
