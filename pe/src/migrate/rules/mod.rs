//! Migration rules: which users and which of their files a capture keeps. Rules are data (TOML)
//! with a built-in set per source family; a preset adds or removes globs per user, sets size
//! caps and picks users by name. `inplace rules show` prints the effective result.

mod matcher;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use matcher::Matcher;

const WINDOWS: &str = include_str!("windows.toml");
const LINUX: &str = include_str!("linux.toml");

/// The OS family a capture reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Windows,
    Linux,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Windows => "windows",
            Family::Linux => "linux",
        }
    }
}

/// Which directories are profiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    /// Windows: names under `Users\` that are not people (globs, case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Linux: the lowest uid whose home is captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_uid: Option<u32>,
    /// Linux: capture `/root` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_root: Option<bool>,
}

/// Changes for one user (or, under `[all]`, for every user).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRules {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Globs to drop from the built-in include or exclude lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_exclude: Vec<String>,
    /// Files larger than this are left out (reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<u64>,
    /// Once this many bytes of the user's files are selected, the rest are left out (reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total: Option<u64>,
}

/// A rule set as written in TOML: a built-in one, a file given with `--rules`, or the
/// effective result of applying a preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub family: Family,
    #[serde(default)]
    pub profiles: Profiles,
    /// Profile-relative globs of what is kept…
    pub include: Vec<String>,
    /// …and of what is not, even when included.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Root-relative globs of system settings kept (hostname, network connections).
    #[serde(default)]
    pub settings: Vec<String>,
    /// Keep the SSH host keys too (`ssh_host_key_files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_host_keys: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_host_key_files: Vec<String>,
    /// Only these users (by name); empty means every profile found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Changes applying to every user.
    #[serde(default, skip_serializing_if = "is_default")]
    pub all: UserRules,
    /// Changes for one user each, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, UserRules>,
}

fn is_default(u: &UserRules) -> bool {
    *u == UserRules::default()
}

/// What a preset's `[migrate]` table may change in the rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// `windows`, `linux` or a path to a rules file; default: by the detected OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_root: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_host_keys: Option<bool>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub all: UserRules,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, UserRules>,
    /// The job's, not the rules': the partitions a job captures, by number; default: the old
    /// OS's partition and every data partition holding profiles. Never empty.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some_partitions")]
    pub sources: Option<Vec<u32>>,
}

/// A `sources` list: partition numbers, at least one.
fn some_partitions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u32>>, D::Error> {
    let v = Vec::<u32>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(
            "sources = [] captures nothing; leave the key out to capture the old OS and every data partition with profiles",
        ));
    }
    Ok(Some(v))
}

/// A rules file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules {name}: {message}")]
    Parse { name: String, message: String },
    #[error("rules {name}: glob {glob:?} is invalid: {message}")]
    Glob { name: String, glob: String, message: String },
    #[error("reading rules file {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

impl RulesError {
    /// The engine's error: the rules are input to fix; nothing was written.
    pub fn error(self) -> crate::error::Error {
        let preset = matches!(&self, RulesError::Glob { name, .. } if name == PRESET);
        let e = crate::error::Error::refused(crate::step::Step::Plan, self.to_string());
        if preset {
            e.hint(crate::error::Hint::FixPreset)
        } else {
            e
        }
    }
}

/// How rule errors name a preset's `[migrate]` table.
const PRESET: &str = "preset [migrate]";

/// The rules a capture uses: `spec` (`windows`, `linux` or a rules file), else the one the
/// overrides name, else the built-in set of `detected` (the source's OS family); with the
/// overrides (a preset's `[migrate]` table, users picked) applied.
pub fn effective(spec: Option<&str>, detected: Option<&str>, overrides: &Overrides) -> crate::error::Result<Rules> {
    let spec = spec.or(overrides.rules.as_deref()).or(detected).ok_or_else(|| {
        crate::error::Error::refused(crate::step::Step::Plan, "no migration rules were chosen and no OS was detected")
            .hint(crate::error::Hint::ChooseRules)
    })?;
    Rules::load(spec).and_then(|r| r.with(overrides)).map_err(RulesError::error)
}

/// The rules for one of a job's sources beside the old OS (a data partition), whose files
/// call for the rules of `family`: the base set the overrides name when it is of that family,
/// else the built-in set of `family`; with the overrides applied.
pub fn effective_for(family: Family, overrides: &Overrides) -> crate::error::Result<Rules> {
    let named = overrides.rules.as_deref().map(Rules::load).transpose().map_err(RulesError::error)?;
    let base = named.filter(|r| r.family == family).unwrap_or_else(|| Rules::builtin(family));
    base.with(overrides).map_err(RulesError::error)
}

impl Rules {
    /// The built-in set for `family`.
    pub fn builtin(family: Family) -> Rules {
        let (text, name) = match family {
            Family::Windows => (WINDOWS, "windows"),
            Family::Linux => (LINUX, "linux"),
        };
        Rules::parse(text, name).expect("built-in rules parse")
    }

    /// `windows`, `linux`, or a TOML file path.
    pub fn load(spec: &str) -> Result<Rules, RulesError> {
        match spec {
            "windows" => Ok(Rules::builtin(Family::Windows)),
            "linux" => Ok(Rules::builtin(Family::Linux)),
            path => {
                let text = std::fs::read_to_string(Path::new(path))
                    .map_err(|source| RulesError::Read { path: path.into(), source })?;
                Rules::parse(&text, path)
            }
        }
    }

    /// Parses and checks every glob, naming `name` in errors.
    pub fn parse(text: &str, name: &str) -> Result<Rules, RulesError> {
        let rules: Rules =
            toml::from_str(text).map_err(|e| RulesError::Parse { name: name.into(), message: e.to_string() })?;
        rules.check(name)?;
        Ok(rules)
    }

    fn check(&self, name: &str) -> Result<(), RulesError> {
        let per_user = std::iter::once(&self.all).chain(self.user.values());
        let user_globs = per_user.flat_map(|u| u.include.iter().chain(&u.exclude));
        let globs = self
            .include
            .iter()
            .chain(&self.exclude)
            .chain(&self.settings)
            .chain(&self.ssh_host_key_files)
            .chain(&self.profiles.skip)
            .chain(user_globs);
        for g in globs {
            matcher::compile(g, false)
                .map_err(|message| RulesError::Glob { name: name.into(), glob: g.clone(), message })?;
        }
        Ok(())
    }

    /// These rules with a preset's changes applied.
    pub fn with(mut self, o: &Overrides) -> Result<Rules, RulesError> {
        if !o.users.is_empty() {
            self.users = o.users.clone();
        }
        if let Some(r) = o.include_root {
            self.profiles.include_root = Some(r);
        }
        if let Some(k) = o.ssh_host_keys {
            self.ssh_host_keys = Some(k);
        }
        merge(&mut self.all, &o.all);
        for (name, u) in &o.user {
            merge(self.user.entry(name.clone()).or_default(), u);
        }
        self.check(PRESET)?;
        Ok(self)
    }

    /// The effective include/exclude matcher and caps for `user`.
    pub fn for_user(&self, user: &str) -> Result<UserSelection, RulesError> {
        let mut u = UserRules { include: self.include.clone(), exclude: self.exclude.clone(), ..Default::default() };
        apply(&mut u, &self.all);
        if let Some(mine) = self.user_rules(user) {
            apply(&mut u, mine);
        }
        let ci = self.family == Family::Windows;
        let bad = |glob: &str, message: String| RulesError::Glob { name: format!("user {user}"), glob: glob.into(), message };
        Ok(UserSelection {
            include: Matcher::new(&u.include, ci).map_err(|(g, m)| bad(&g, m))?,
            exclude: Matcher::new(&u.exclude, ci).map_err(|(g, m)| bad(&g, m))?,
            max_file_size: u.max_file_size,
            max_total: u.max_total,
        })
    }

    fn user_rules(&self, user: &str) -> Option<&UserRules> {
        match self.family {
            Family::Windows => self.user.iter().find(|(n, _)| n.eq_ignore_ascii_case(user)).map(|(_, r)| r),
            Family::Linux => self.user.get(user),
        }
    }

    /// Whether `user` is wanted (by the `users` list; empty means all).
    pub fn wants_user(&self, user: &str) -> bool {
        self.users.is_empty()
            || self.users.iter().any(|u| match self.family {
                Family::Windows => u.eq_ignore_ascii_case(user),
                Family::Linux => u == user,
            })
    }

    /// Root-relative globs of the settings kept.
    pub fn settings(&self) -> Result<Matcher, RulesError> {
        let mut globs = self.settings.clone();
        if self.ssh_host_keys == Some(true) {
            globs.extend(self.ssh_host_key_files.iter().cloned());
        }
        Matcher::new(&globs, false)
            .map_err(|(glob, message)| RulesError::Glob { name: "settings".into(), glob, message })
    }

    /// The effective rules as TOML, for `inplace rules show` and the store's manifest.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("rules serialize")
    }
}

fn merge(into: &mut UserRules, from: &UserRules) {
    into.include.extend(from.include.iter().cloned());
    into.exclude.extend(from.exclude.iter().cloned());
    into.remove_include.extend(from.remove_include.iter().cloned());
    into.remove_exclude.extend(from.remove_exclude.iter().cloned());
    into.max_file_size = from.max_file_size.or(into.max_file_size);
    into.max_total = from.max_total.or(into.max_total);
}

fn apply(u: &mut UserRules, change: &UserRules) {
    u.include.retain(|g| !change.remove_include.contains(g));
    u.exclude.retain(|g| !change.remove_exclude.contains(g));
    u.include.extend(change.include.iter().cloned());
    u.exclude.extend(change.exclude.iter().cloned());
    u.max_file_size = change.max_file_size.or(u.max_file_size);
    u.max_total = change.max_total.or(u.max_total);
}

/// The rules for one user, compiled.
#[derive(Debug)]
pub struct UserSelection {
    pub include: Matcher,
    pub exclude: Matcher,
    pub max_file_size: Option<u64>,
    pub max_total: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_rules_come_from_the_spec_the_preset_or_the_os() {
        let o: Overrides = toml::from_str("rules = \"linux\"\nusers = [\"alice\"]\n").unwrap();
        assert_eq!(effective(Some("windows"), Some("linux"), &o).unwrap().family, Family::Windows);
        let r = effective(None, Some("windows"), &o).unwrap();
        assert_eq!((r.family, r.users.clone()), (Family::Linux, vec!["alice".to_string()]));
        assert_eq!(effective(None, Some("windows"), &Overrides::default()).unwrap().family, Family::Windows);
        let e = effective(None, None, &Overrides::default()).unwrap_err();
        assert_eq!((e.kind, e.hints.clone()), (crate::error::Kind::Refused, vec![crate::error::Hint::ChooseRules]));
        assert!(!e.problem.contains("--"), "{e}");
        let bad: Overrides = toml::from_str("[all]\ninclude = [\"../x\"]\n").unwrap();
        let e = effective(Some("linux"), None, &bad).unwrap_err();
        assert_eq!(e.hints, [crate::error::Hint::FixPreset], "{e}");
    }

    #[test]
    fn a_data_source_takes_the_named_rules_only_of_its_own_family() {
        let o: Overrides = toml::from_str("rules = \"linux\"\n[all]\nexclude = [\"**/*.iso\"]\n").unwrap();
        let w = effective_for(Family::Windows, &o).unwrap();
        assert_eq!(w.family, Family::Windows);
        assert!(w.for_user("Carol").unwrap().exclude.first_match("Documents/x.iso").is_some(), "the overrides apply");
        assert_eq!(effective_for(Family::Linux, &o).unwrap(), Rules::builtin(Family::Linux).with(&o).unwrap());
        let bad: Overrides = toml::from_str("rules = \"/nonexistent/rules.toml\"\n").unwrap();
        assert!(effective_for(Family::Windows, &bad).is_err(), "a rules file that cannot be read is said");
    }

    #[test]
    fn sources_are_partition_numbers_never_none() {
        let o: Overrides = toml::from_str("sources = [2, 3]\n").unwrap();
        assert_eq!(o.sources, Some(vec![2, 3]));
        let e = toml::from_str::<Overrides>("sources = []\n").unwrap_err();
        assert!(e.to_string().contains("captures nothing"), "{e}");
        assert_eq!(toml::from_str::<Overrides>("").unwrap().sources, None);
    }

    #[test]
    fn builtins_parse_and_select_as_documented() {
        let w = Rules::builtin(Family::Windows);
        let carol = w.for_user("Carol").unwrap();
        for kept in ["Documents/a.txt", "desktop/x/y.png", "NTUSER.DAT", "AppData/Roaming/Microsoft/Signatures/s.htm"] {
            assert!(carol.include.matches(kept), "{kept}");
            assert!(carol.exclude.first_match(kept).is_none(), "{kept}");
        }
        for gone in ["AppData/Local/Temp/junk", "Documents/x.tmp", "AppData/Local/Google/Chrome/User Data/Default/Cache/f_0001"] {
            assert!(carol.exclude.first_match(gone).is_some(), "{gone}");
        }
        assert!(!carol.include.matches("AppData/Local/Packages/x"));
        let l = Rules::builtin(Family::Linux);
        let alice = l.for_user("alice").unwrap();
        assert!(alice.include.matches("notes/a.txt"));
        assert!(alice.include.matches(".bashrc"));
        assert_eq!(alice.exclude.first_match(".cache/mesa/x"), Some(".cache/**"));
        assert!(l.settings().unwrap().matches("etc/NetworkManager/system-connections/home.nmconnection"));
        assert!(!l.settings().unwrap().matches("etc/ssh/ssh_host_ed25519_key"));
    }

    #[test]
    fn a_preset_adds_and_removes_globs_per_user_and_picks_users() {
        let o: Overrides = toml::from_str(
            r#"
            users = ["alice"]
            ssh_host_keys = true
            [all]
            exclude = ["**/*.iso"]
            [user.alice]
            remove_exclude = [".cache/**"]
            max_file_size = 1000
            "#,
        )
        .unwrap();
        let r = Rules::builtin(Family::Linux).with(&o).unwrap();
        assert!(r.wants_user("alice") && !r.wants_user("bob"));
        let alice = r.for_user("alice").unwrap();
        assert!(alice.exclude.first_match(".cache/x").is_none());
        assert!(alice.exclude.first_match("dl/x.iso").is_some());
        assert_eq!(alice.max_file_size, Some(1000));
        let bob = r.for_user("bob").unwrap();
        assert!(bob.exclude.first_match(".cache/x").is_some());
        assert!(r.settings().unwrap().matches("etc/ssh/ssh_host_rsa_key"));
        // The effective rules print as TOML that reads back the same.
        assert_eq!(Rules::parse(&r.to_toml(), "shown").unwrap(), r);
    }

    #[test]
    fn bad_rules_name_the_problem() {
        let e = Rules::parse("family = \"linux\"\ninclude = [\"a/**b\"]\n", "mine.toml").unwrap_err();
        assert!(e.to_string().contains("mine.toml") && e.to_string().contains("a/**b"), "{e}");
        let e = Rules::parse("family = \"linux\"\ninclude = []\nexclud = []\n", "mine.toml").unwrap_err();
        assert!(e.to_string().contains("exclud"), "{e}");
    }
}
