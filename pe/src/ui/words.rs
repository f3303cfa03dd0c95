//! Words for the engine's errors on a plain console: the problem, what was written, and each
//! hint. Front ends with their own words for hints (the CLI's flags) pass them in.

use crate::error::{Error, Hint, Kind, Written};

/// `problem; what was written. Hint. Hint.`, each part once, hints in the PE's words.
pub fn error(e: &Error) -> String {
    error_with(e, &hint)
}

/// A hint in the PE's words: neutral ones, but a signature's names the command that makes it.
pub fn hint(h: &Hint) -> String {
    match h {
        Hint::SignPreset => "Sign the preset with `inplace preset sign` and put the .sig it writes beside the preset on the server, \
                             or boot a PE built with the preset key the preset is signed with"
            .into(),
        Hint::SignImage => "Use an image signed (`inplace image create`) with the secret key of this PE's preset key, \
                            or pin the key it is signed with in the preset's [image] key"
            .into(),
        other => capitalised(&other.to_string()),
    }
}

/// As [`error`], with the front end's words for each hint.
pub fn error_with(e: &Error, hint: &dyn Fn(&Hint) -> String) -> String {
    let mut out = e.problem.trim_end_matches(['.', ' ']).to_string();
    let written = match (e.kind, e.written) {
        (_, Written::Nothing) => Some("nothing was written"),
        (_, Written::StoreOnly) => Some("only the store was written; the old OS is untouched"),
        (Kind::Cancelled, Written::Disk) => Some("the disk was partly written"),
        (_, Written::Disk) => None,
    };
    if let Some(w) = written {
        if !out.contains(w) {
            out.push_str("; ");
            out.push_str(w);
        }
    }
    for h in &e.hints {
        let text = hint(h);
        if !out.contains(&text) {
            out.push_str(". ");
            out.push_str(&text);
        }
    }
    out
}

pub fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
