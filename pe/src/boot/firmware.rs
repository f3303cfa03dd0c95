//! Firmware state: UEFI or BIOS, and whether Secure Boot is on (from efivarfs).

use std::path::Path;

/// `SecureBoot` in the EFI global-variable namespace.
const SECURE_BOOT_VAR: &str = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Firmware {
    pub uefi: bool,
    /// `None` when the variable could not be read (BIOS, or efivarfs missing).
    pub secure_boot: Option<bool>,
}

impl Firmware {
    /// Reads `sys/firmware/efi` and the SecureBoot variable under `efivars`.
    pub fn detect(sys: &Path, efivars: &Path) -> Firmware {
        let uefi = sys.join("firmware/efi").is_dir();
        let secure_boot = if uefi {
            // efivarfs files start with 4 bytes of attributes, then the value (one byte here).
            std::fs::read(efivars.join(SECURE_BOOT_VAR)).ok().and_then(|b| b.get(4).map(|v| *v == 1))
        } else {
            None
        };
        Firmware { uefi, secure_boot }
    }

    /// `firmware uefi secure-boot on`, as printed on the consoles.
    pub fn line(&self) -> String {
        format!(
            "firmware {} secure-boot {}",
            if self.uefi { "uefi" } else { "bios" },
            if self.secure_boot == Some(true) { "on" } else { "off" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uefi_and_secure_boot() {
        let d = tempfile::tempdir().unwrap();
        let (sys, vars) = (d.path().join("sys"), d.path().join("vars"));
        std::fs::create_dir_all(sys.join("firmware")).unwrap();
        assert_eq!(Firmware::detect(&sys, &vars).line(), "firmware bios secure-boot off");
        std::fs::create_dir_all(sys.join("firmware/efi")).unwrap();
        std::fs::create_dir_all(&vars).unwrap();
        assert_eq!(Firmware::detect(&sys, &vars), Firmware { uefi: true, secure_boot: None });
        std::fs::write(vars.join(SECURE_BOOT_VAR), [6, 0, 0, 0, 1]).unwrap();
        assert_eq!(Firmware::detect(&sys, &vars).line(), "firmware uefi secure-boot on");
        std::fs::write(vars.join(SECURE_BOOT_VAR), [6, 0, 0, 0, 0]).unwrap();
        assert_eq!(Firmware::detect(&sys, &vars).line(), "firmware uefi secure-boot off");
    }
}
