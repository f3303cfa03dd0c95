//! Who is reporting: the machine's DMI serial and UUID and its first wired NIC's MAC, read from
//! sysfs, so a collector can tell the seats of a lab apart.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// DMI `product_serial` (`null` when the firmware gives none).
    pub serial: Option<String>,
    /// DMI `product_uuid`, lower case.
    pub uuid: Option<String>,
    /// The first physical NIC's MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
}

fn dmi(sys: &Path, name: &str) -> Option<String> {
    let v = std::fs::read_to_string(sys.join("class/dmi/id").join(name)).ok()?;
    let v = v.trim();
    let filler = v.is_empty() || v.chars().all(|c| c == '0' || c == '-' || c == ' ') || v.eq_ignore_ascii_case("not specified");
    (!filler).then(|| v.to_string())
}

impl Identity {
    pub fn read(sys: &Path) -> Identity {
        let mac = crate::net::link::physical_interfaces(sys)
            .iter()
            .filter_map(|i| std::fs::read_to_string(sys.join("class/net").join(i).join("address")).ok())
            .map(|m| m.trim().to_ascii_lowercase())
            .find(|m| !m.is_empty() && m != "00:00:00:00:00:00");
        Identity { serial: dmi(sys, "product_serial"), uuid: dmi(sys, "product_uuid").map(|u| u.to_ascii_lowercase()), mac }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dmi_and_skips_filler() {
        let d = tempfile::tempdir().unwrap();
        let dmi = d.path().join("class/dmi/id");
        std::fs::create_dir_all(&dmi).unwrap();
        std::fs::write(dmi.join("product_serial"), "Not Specified\n").unwrap();
        std::fs::write(dmi.join("product_uuid"), "4C4C4544-0042-3010-8056-B4C04F4A4E32\n").unwrap();
        let id = Identity::read(d.path());
        assert_eq!(id.serial, None);
        assert_eq!(id.uuid.as_deref(), Some("4c4c4544-0042-3010-8056-b4c04f4a4e32"));
        assert_eq!(id.mac, None);
    }
}
