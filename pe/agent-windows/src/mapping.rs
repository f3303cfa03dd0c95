//! Where each manifest path goes in the new profile.
//!
//! | first component (any case) | destination |
//! |---|---|
//! | Desktop, Documents, Downloads, Pictures, Music, Videos, Favorites | that Known Folder + the rest |
//! | `NTUSER.DAT`, `ntuser.dat.LOG*`, `ntuser.dat{…}` (transaction logs), `ntuser.ini`, `AppData/Local/Microsoft/Windows/UsrClass.dat*` | Documents\Migrated settings\ + the whole path |
//! | anything else | the profile folder + the whole path |

/// A folder of the user's the agent writes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownFolder {
    Profile,
    Desktop,
    Documents,
    Downloads,
    Pictures,
    Music,
    Videos,
    Favorites,
}

impl KnownFolder {
    /// The folders a first component maps to, with their names.
    pub const MAPPED: [(KnownFolder, &'static str); 7] = [
        (KnownFolder::Desktop, "Desktop"),
        (KnownFolder::Documents, "Documents"),
        (KnownFolder::Downloads, "Downloads"),
        (KnownFolder::Pictures, "Pictures"),
        (KnownFolder::Music, "Music"),
        (KnownFolder::Videos, "Videos"),
        (KnownFolder::Favorites, "Favorites"),
    ];

    /// Its usual folder name under the profile.
    pub fn name(self) -> &'static str {
        match self {
            KnownFolder::Profile => "",
            other => Self::MAPPED.iter().find(|(k, _)| *k == other).map(|(_, n)| *n).unwrap_or(""),
        }
    }
}

/// Where one entry goes: a Known Folder plus components below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub folder: KnownFolder,
    pub rel: Vec<String>,
    /// A registry hive or settings file that is kept, not applied.
    pub setting: bool,
}

/// The folder under Documents that receives settings files.
pub const MIGRATED_SETTINGS: &str = "Migrated settings";

/// Maps a checked manifest path to its destination.
pub fn map(path: &str) -> Destination {
    let comps: Vec<String> = path.split('/').map(str::to_string).collect();
    if is_setting(path) {
        let mut rel = vec![MIGRATED_SETTINGS.to_string()];
        rel.extend(comps);
        return Destination { folder: KnownFolder::Documents, rel, setting: true };
    }
    if let Some((folder, _)) = KnownFolder::MAPPED.iter().find(|(_, n)| n.eq_ignore_ascii_case(&comps[0])) {
        return Destination { folder: *folder, rel: comps[1..].to_vec(), setting: false };
    }
    Destination { folder: KnownFolder::Profile, rel: comps, setting: false }
}

/// Registry hives and settings files that the new OS does not take over.
pub fn is_setting(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p == "ntuser.dat"
        || p == "ntuser.ini"
        || (p.starts_with("ntuser.dat.log") && !p.contains('/'))
        || (p.starts_with("ntuser.dat{") && !p.contains('/'))
        || p.strip_prefix("appdata/local/microsoft/windows/usrclass.dat").is_some_and(|rest| !rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(folder: KnownFolder, rel: &[&str], setting: bool) -> Destination {
        Destination { folder, rel: rel.iter().map(|s| s.to_string()).collect(), setting }
    }

    #[test]
    fn known_folders_any_case() {
        assert_eq!(map("Documents/a/b.txt"), d(KnownFolder::Documents, &["a", "b.txt"], false));
        assert_eq!(map("DESKTOP/x.lnk"), d(KnownFolder::Desktop, &["x.lnk"], false));
        assert_eq!(map("favorites"), d(KnownFolder::Favorites, &[], false));
        assert_eq!(map("Videos/v.mp4"), d(KnownFolder::Videos, &["v.mp4"], false));
    }

    #[test]
    fn settings_go_to_migrated_settings() {
        assert_eq!(map("NTUSER.DAT"), d(KnownFolder::Documents, &["Migrated settings", "NTUSER.DAT"], true));
        assert!(is_setting("ntuser.dat.LOG1"));
        assert!(is_setting("NTUSER.DAT{016888bd-6c6f-11de-8d1d-001e0bcde3ec}.TM.blf"));
        assert!(is_setting("ntuser.ini"));
        assert!(is_setting("AppData/Local/Microsoft/Windows/UsrClass.dat"));
        assert!(is_setting("appdata/local/microsoft/windows/UsrClass.dat.LOG2"));
        assert_eq!(
            map("AppData/Local/Microsoft/Windows/UsrClass.dat").rel,
            ["Migrated settings", "AppData", "Local", "Microsoft", "Windows", "UsrClass.dat"]
        );
        assert!(!is_setting("Documents/NTUSER.DAT"));
        assert!(!is_setting("ntuser.dat.bak/x"));
        assert!(!is_setting("AppData/Local/Microsoft/Windows/UsrClass.dat.d/x"));
    }

    #[test]
    fn the_rest_goes_to_the_profile() {
        assert_eq!(map("AppData/Roaming/app/x.ini"), d(KnownFolder::Profile, &["AppData", "Roaming", "app", "x.ini"], false));
        assert_eq!(map("DocumentsOld/x"), d(KnownFolder::Profile, &["DocumentsOld", "x"], false));
    }
}
