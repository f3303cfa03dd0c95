//! Is a program statically linked? The restore agent runs in the new OS, whose libraries are
//! unknown, so it must not need a program interpreter (`PT_INTERP`).

/// Why a program cannot run in an unknown system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotStatic(pub String);

/// `Ok(())` for a 64-bit little-endian ELF executable with no `PT_INTERP` program header.
pub fn check_static(bytes: &[u8]) -> Result<(), NotStatic> {
    check(bytes).map_err(NotStatic)
}

fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 64 || &bytes[0..4] != b"\x7fELF" {
        return Err("it is not an ELF program".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("it is not a 64-bit little-endian ELF program".into());
    }
    let u16at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64at = |at: usize| bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64at(32), u16at(54), u16at(56)) else {
        return Err("its ELF header is truncated".into());
    };
    for i in 0..u64::from(phnum) {
        let at = phoff.checked_add(i * u64::from(phentsize)).and_then(|a| usize::try_from(a).ok());
        let Some(kind) = at.and_then(|a| bytes.get(a..a + 4)) else {
            return Err("its program headers are truncated".into());
        };
        if u32::from_le_bytes([kind[0], kind[1], kind[2], kind[3]]) == 3 {
            return Err("it is dynamically linked (it has a program interpreter)".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_is_judged_by_its_headers() {
        // The host's test binary is dynamically linked (glibc); a header with no program
        // headers is static.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(check_static(&me).unwrap_err().to_string().contains("dynamically linked"));
        let mut h = me[..64].to_vec();
        h[56] = 0;
        h[57] = 0;
        assert!(check_static(&h).is_ok());
        assert!(check_static(b"#!/bin/sh\n").is_err());
        assert!(check_static(&me[..40]).is_err());
    }
}
