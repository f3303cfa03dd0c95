//! The diskpart scripts cleanup runs.

/// What becomes of the store after the migration (job.json's `store_after`).
pub use crate::job::StoreAfter;

/// The diskpart lines for `store_after` with the store at drive `store` and Windows at
/// `system` (the drive of `%SystemDrive%`); `None` for `keep`.
pub fn script(after: StoreAfter, store: char, system: char) -> Option<Vec<String>> {
    match after {
        StoreAfter::Keep => None,
        StoreAfter::Delete => Some(vec![
            format!("select volume {store}"),
            "delete volume".into(),
            format!("select volume {system}"),
            "extend".into(),
            "exit".into(),
        ]),
        StoreAfter::Empty => Some(vec![
            format!("select volume {store}"),
            "format fs=ntfs quick label=\"Data\"".into(),
            "exit".into(),
        ]),
    }
}

/// The script as diskpart reads it (CRLF lines).
pub fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_then_extend_the_system_drive() {
        let s = script(StoreAfter::Delete, 'E', 'C').unwrap();
        assert_eq!(s, ["select volume E", "delete volume", "select volume C", "extend", "exit"]);
        assert_eq!(text(&s), "select volume E\r\ndelete volume\r\nselect volume C\r\nextend\r\nexit\r\n");
    }

    #[test]
    fn empty_formats_the_store_as_a_data_drive() {
        assert_eq!(script(StoreAfter::Empty, 'D', 'C').unwrap(), ["select volume D", "format fs=ntfs quick label=\"Data\"", "exit"]);
        assert_eq!(script(StoreAfter::Keep, 'D', 'C'), None);
    }
}
