//! A list of `/`-separated globs (`*` within a name, `**` across directories) matched against
//! relative paths, with the two questions a directory walk asks: can anything under this
//! directory match, and does a pattern take the whole directory.

use glob::{MatchOptions, Pattern};

/// Compiled globs, in the order given.
#[derive(Debug, Clone)]
pub struct Matcher {
    globs: Vec<(String, Pattern, Vec<Pattern>)>,
    options: MatchOptions,
}

/// Checks one glob; the error says what is wrong with it.
pub(super) fn compile(glob: &str, _case_insensitive: bool) -> Result<Pattern, String> {
    if glob.starts_with('/') || glob.split('/').any(|c| c == "..") {
        return Err("globs are relative paths without `..`".into());
    }
    Pattern::new(glob).map_err(|e| e.msg.to_string())
}

impl Matcher {
    /// Compiles `globs`; on failure returns the glob and why.
    pub fn new(globs: &[String], case_insensitive: bool) -> Result<Matcher, (String, String)> {
        let mut out = Vec::new();
        for g in globs {
            let whole = compile(g, case_insensitive).map_err(|m| (g.clone(), m))?;
            let parts = g
                .split('/')
                .map(|c| Pattern::new(c).map_err(|e| (g.clone(), e.msg.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            out.push((g.clone(), whole, parts));
        }
        let options =
            MatchOptions { case_sensitive: !case_insensitive, require_literal_separator: true, require_literal_leading_dot: false };
        Ok(Matcher { globs: out, options })
    }

    /// Whether any glob matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        self.first_match(path).is_some()
    }

    /// The first glob matching `path`.
    pub fn first_match(&self, path: &str) -> Option<&str> {
        self.globs.iter().find(|(_, p, _)| p.matches_with(path, self.options)).map(|(g, _, _)| g.as_str())
    }

    /// The glob that matches everything under directory `dir`, if one does (`Temp/**` for
    /// `Temp`): the walk can then leave the directory out as a whole.
    pub fn takes_dir(&self, dir: &str) -> Option<&str> {
        let probe = format!("{dir}/\u{1}");
        let deeper = format!("{dir}/\u{1}/\u{1}");
        self.globs
            .iter()
            .find(|(_, p, _)| p.matches_with(&probe, self.options) && p.matches_with(&deeper, self.options))
            .map(|(g, _, _)| g.as_str())
    }

    /// Whether some glob could match a path under directory `dir` (so the walk must enter it).
    pub fn could_match_under(&self, dir: &str) -> bool {
        self.could_match_under_if(dir, |_| true)
    }

    /// Like [`could_match_under`](Self::could_match_under), counting only globs anchored at
    /// the root (not starting with `**`).
    pub fn anchored_could_match_under(&self, dir: &str) -> bool {
        self.could_match_under_if(dir, |p| p.first().is_some_and(|c| c.as_str() != "**"))
    }

    fn could_match_under_if(&self, dir: &str, counts: impl Fn(&[Pattern]) -> bool) -> bool {
        let parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
        self.globs.iter().filter(|(_, _, p)| counts(p)).any(|(_, _, pattern)| {
            for (i, name) in parts.iter().enumerate() {
                match pattern.get(i) {
                    None => return false,
                    Some(p) if p.as_str() == "**" => return true,
                    Some(p) if !p.matches_with(name, self.options) => return false,
                    Some(_) => {}
                }
            }
            pattern.len() > parts.len()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(globs: &[&str], ci: bool) -> Matcher {
        Matcher::new(&globs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ci).unwrap()
    }

    #[test]
    fn double_star_spans_directories_and_single_star_does_not() {
        let x = m(&["Documents/**", "*.txt"], true);
        assert!(x.matches("Documents/a") && x.matches("documents/a/b/c") && x.matches("notes.TXT"));
        assert!(!x.matches("sub/notes.txt") && !x.matches("Downloads/a"));
        assert!(!m(&["Documents/**"], false).matches("documents/a"));
    }

    #[test]
    fn directories_are_entered_only_when_something_under_them_can_match() {
        let x = m(&["Documents/**", "AppData/Roaming/Mozilla/**", "NTUSER.DAT"], true);
        assert!(x.could_match_under("Documents") && x.could_match_under("Documents/deep/er"));
        assert!(x.could_match_under("AppData") && x.could_match_under("AppData/Roaming"));
        assert!(!x.could_match_under("AppData/Local") && !x.could_match_under("Music"));
        assert!(m(&["**"], false).could_match_under("any/where"));
        let x = m(&["AppData/Local/Temp/**", "**/Cache/**"], true);
        assert!(x.anchored_could_match_under("AppData/Local") && !x.anchored_could_match_under("Music"));
    }

    #[test]
    fn a_whole_directory_is_taken_only_by_a_glob_covering_all_of_it() {
        let x = m(&["AppData/Local/Temp/**", "**/Cache/**", "**/*.tmp"], true);
        assert_eq!(x.takes_dir("AppData/Local/Temp"), Some("AppData/Local/Temp/**"));
        assert_eq!(x.takes_dir("AppData/Local/Google/Chrome/User Data/Default/Cache"), Some("**/Cache/**"));
        assert_eq!(x.takes_dir("Documents"), None);
        assert_eq!(x.takes_dir("AppData/Local"), None);
    }

    #[test]
    fn escaping_globs_are_refused() {
        assert!(Matcher::new(&["../x".to_string()], false).is_err());
        assert!(Matcher::new(&["/etc/**".to_string()], false).is_err());
    }
}
