//! Kernel command line: the `inplace.*` parameters the PE understands.

use std::collections::BTreeMap;

/// `inplace.*` parameters from the kernel command line, without the `inplace.` prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses a kernel command line. Values may be double-quoted; `inplace.x` alone means `x=1`.
    pub fn parse(cmdline: &str) -> Params {
        let mut values = BTreeMap::new();
        for word in split_words(cmdline) {
            let Some(rest) = word.strip_prefix("inplace.") else { continue };
            let (key, value) = match rest.split_once('=') {
                Some((k, v)) => (k, v.trim_matches('"')),
                None => (rest, "1"),
            };
            if !key.is_empty() {
                values.insert(key.to_string(), value.to_string());
            }
        }
        Params { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// What the PE should do: `tui` (interactive, the default) or `inspect`.
    pub fn action(&self) -> &str {
        self.get("action").unwrap_or("tui")
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Splits on whitespace, keeping double-quoted runs (which may hold spaces) in one word.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_inplace_parameters() {
        let p = Params::parse("BOOT_IMAGE=/vmlinuz console=ttyS0 inplace.action=inspect quiet inplace.debug\n");
        assert_eq!(p.action(), "inspect");
        assert_eq!(p.get("debug"), Some("1"));
        assert_eq!(p.get("console"), None);
        assert_eq!(p.iter().count(), 2);
    }

    #[test]
    fn quoted_values_keep_spaces() {
        let p = Params::parse(r#"inplace.preset="http://10.0.2.2:8000/a b.toml" ro"#);
        assert_eq!(p.get("preset"), Some("http://10.0.2.2:8000/a b.toml"));
    }

    #[test]
    fn default_action_is_interactive() {
        assert_eq!(Params::parse("").action(), "tui");
        assert_eq!(Params::parse("inplace.=x").iter().count(), 0);
    }
}
