//! Reads back what a guest asked for on the network, from the pcap file QEMU's `filter-dump`
//! writes ([`crate::qemu::Vm::capturing`]): the files a PXE client read over TFTP.

use std::path::Path;

/// The file names of every TFTP read request (RRQ, to UDP port 69) in a pcap file, in order,
/// retries included.
pub fn tftp_requests(pcap: &Path) -> Vec<String> {
    let data = std::fs::read(pcap).unwrap_or_else(|e| panic!("reading {}: {e}", pcap.display()));
    frames(&data)
        .into_iter()
        .filter_map(|frame| {
            let udp = ipv4_udp(frame)?;
            let (dst, payload) = (u16::from_be_bytes([udp[2], udp[3]]), udp.get(8..)?);
            // opcode 1 (RRQ), then the file name and the mode, each ending in NUL.
            if dst != 69 || payload.get(..2)? != [0, 1] {
                return None;
            }
            let name = payload[2..].split(|b| *b == 0).next()?;
            Some(String::from_utf8_lossy(name).into_owned())
        })
        .collect()
}

/// The frames of a classic pcap file (either byte order), each cut to its captured length.
fn frames(data: &[u8]) -> Vec<&[u8]> {
    let Some(magic) = data.get(..4) else { return Vec::new() };
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a pcap file (magic {magic:02x?})"),
    };
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) } as usize)
    };
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(len) = u32_at(at + 8) {
        let Some(frame) = data.get(at + 16..at + 16 + len) else { break };
        out.push(frame);
        at += 16 + len;
    }
    out
}

/// The UDP header and payload of an Ethernet frame carrying IPv4/UDP.
fn ipv4_udp(frame: &[u8]) -> Option<&[u8]> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(ihl..)?;
    udp.get(..8)?;
    Some(udp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2];
        ip.extend(1024u16.to_be_bytes());
        ip.extend(dst_port.to_be_bytes());
        ip.extend(((8 + payload.len()) as u16).to_be_bytes());
        ip.extend([0, 0]);
        ip.extend(payload);
        f.extend(ip);
        f
    }

    #[test]
    fn finds_read_requests_only() {
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        pcap.extend([0u8; 16]);
        for f in [
            frame(69, b"\0\x01/grub/grub.cfg\0octet\0blksize\01024\0"),
            frame(69, b"\0\x04\0\x01"),
            frame(67, b"\0\x01not-tftp\0"),
            frame(69, b"\0\x01bootx64.efi\0octet\0"),
        ] {
            pcap.extend([0u8; 8]);
            pcap.extend((f.len() as u32).to_le_bytes());
            pcap.extend((f.len() as u32).to_le_bytes());
            pcap.extend(f);
        }
        // A record cut short at the end of the file is left out.
        pcap.extend([0u8; 8]);
        pcap.extend(100u32.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.pcap");
        std::fs::write(&p, pcap).unwrap();
        assert_eq!(tftp_requests(&p), ["/grub/grub.cfg", "bootx64.efi"]);
    }
}
