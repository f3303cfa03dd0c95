//! Whether a Windows volume was generalized (`sysprep /generalize /oobe`), as a deployment
//! image must be: `Windows\System32\Sysprep\Sysprep_succeeded.tag`, the image state Windows
//! keeps in `Windows\Setup\State\State.ini`, and an answer file left in `Windows\Panther`.

use serde::{Deserialize, Serialize};

use crate::fs::{read_text, FsReader};

pub const TAG: &[u8] = b"/Windows/System32/Sysprep/Sysprep_succeeded.tag";
pub const STATE_INI: &[u8] = b"/Windows/Setup/State/State.ini";
pub const PANTHER_UNATTEND: [&[u8]; 2] = [b"/Windows/Panther/unattend.xml", b"/Windows/Panther/Unattend/unattend.xml"];

/// What a Windows volume says of sysprep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysprep {
    /// `Sysprep_succeeded.tag` is there.
    pub succeeded_tag: bool,
    /// `ImageState` of `State.ini` (`IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE`), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_state: Option<String>,
    /// An answer file in `Windows\Panther`.
    #[serde(default)]
    pub panther_unattend: bool,
}

impl Sysprep {
    /// Reads the markers; `None` when the volume has none of them.
    pub fn read(fs: &mut dyn FsReader) -> Option<Sysprep> {
        let succeeded_tag = fs.exists(TAG);
        let image_state = read_text(fs, STATE_INI, 64 << 10).ok().and_then(|t| image_state(&t));
        let panther_unattend = PANTHER_UNATTEND.iter().any(|p| fs.exists(p));
        let s = Sysprep { succeeded_tag, image_state, panther_unattend };
        (s != Sysprep::default()).then_some(s)
    }

    /// Generalized and sealed for a first boot: the tag, and an image state that is a
    /// generalized one when Windows recorded one.
    pub fn generalized(&self) -> bool {
        self.succeeded_tag && self.image_state.as_deref().is_none_or(|s| s.starts_with("IMAGE_STATE_GENERALIZE_RESEAL"))
    }
}

/// The `ImageState=` value of a `State.ini`.
fn image_state(ini: &str) -> Option<String> {
    ini.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        k.trim().eq_ignore_ascii_case("ImageState").then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_state_is_read_from_the_ini() {
        let ini = "[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n";
        assert_eq!(image_state(ini).as_deref(), Some("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"));
        assert_eq!(image_state("[State]\n"), None);
    }

    #[test]
    fn generalized_needs_the_tag_and_a_generalized_state() {
        let s = |tag: bool, state: Option<&str>| Sysprep { succeeded_tag: tag, image_state: state.map(String::from), panther_unattend: false };
        assert!(s(true, Some("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE")).generalized());
        assert!(s(true, None).generalized());
        assert!(!s(true, Some("IMAGE_STATE_COMPLETE")).generalized(), "sysprep ran once, then Windows was set up again");
        assert!(!s(false, Some("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE")).generalized());
    }
}
