//! Text that fits: a line longer than its room is shortened at a word boundary with an
//! ellipsis (`…`), never cut mid-word without one; the detail pane shows values whole.

/// `s` in at most `width` columns (characters): whole when it fits, else cut after the last
/// whole word that leaves room for `…` (or, when that would drop more than half, cut mid-word
/// with the `…` saying so).
pub fn fit(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let room = width - 1;
    let head: String = s.chars().take(room).collect();
    let next_is_break = s.chars().nth(room).is_some_and(|c| c == ' ');
    let cut = if next_is_break {
        head.trim_end_matches([' ', ',', '·', ':', '—', '-']).to_string()
    } else {
        match head.rfind([' ', '/', ',']) {
            Some(i) if head[..i].chars().count() * 2 >= room => head[..i].trim_end_matches([' ', ',', '·', ':', '—', '-']).to_string(),
            _ => head,
        }
    };
    format!("{cut}…")
}

/// Bytes in words (`1.5 GiB`).
pub fn size(bytes: u64) -> String {
    crate::units::human_size(bytes)
}

/// A rate in bytes per second (`12.3 MiB/s`).
pub fn rate(bps: f64) -> String {
    format!("{}/s", crate::units::human_size(bps.max(0.0) as u64))
}

/// Seconds as `1 h 02 min`, `3 min 05 s` or `42 s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_ends_in_an_ellipsis_at_a_word() {
        assert_eq!(fit("users: alice, bob", 40), "users: alice, bob");
        assert_eq!(fit("Debian GNU/Linux 12 — users: alice, bob", 32), "Debian GNU/Linux 12 — users…");
        assert_eq!(fit("9.2 GiB · 250 left out · partition 2", 26), "9.2 GiB · 250 left out…");
        assert_eq!(fit("firmware uefi secure-boot off", 26), "firmware uefi secure-boot…");
        assert_eq!(fit("abcdefghij", 5), "abcd…");
        assert!(fit("a b c d e f g h", 6).chars().count() <= 6);
        assert_eq!(duration(3725.0), "1 h 02 min");
        assert_eq!(duration(65.0), "1 min 05 s");
    }
}
