//! Names for a restored file written beside the new OS's own (the `keep-new` policy).

/// `name (restored).ext` for `n == 1`, `name (restored n).ext` after; a leading dot is part of
/// the name (`.bashrc (restored)`), and only the last extension moves.
pub fn beside_name(name: &str, n: u32) -> String {
    let tag = if n <= 1 { "(restored)".to_string() } else { format!("(restored {n})") };
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{} {tag}{}", &name[..i], &name[i..]),
        _ => format!("{name} {tag}"),
    }
}

/// How many beside names are tried before the entry fails.
pub const MAX_BESIDE: u32 = 999;

#[cfg(test)]
mod tests {
    use super::beside_name;

    #[test]
    fn names() {
        assert_eq!(beside_name("report.docx", 1), "report (restored).docx");
        assert_eq!(beside_name("report.docx", 2), "report (restored 2).docx");
        assert_eq!(beside_name("archive.tar.gz", 1), "archive.tar (restored).gz");
        assert_eq!(beside_name("Makefile", 1), "Makefile (restored)");
        assert_eq!(beside_name(".bashrc", 3), ".bashrc (restored 3)");
    }
}
