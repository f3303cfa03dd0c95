//! The journal's reserve: two 32 KiB slots just before the store partition's last sector, in
//! the store's tail MiB that lies outside its FAT32 volume (`docs/store-format.md`, "Journal
//! reserve"). Each write goes to the slot the previous write did not use, so a write torn by a
//! power cut leaves the other slot, one transition older, intact. A reader takes the valid slot
//! with the higher sequence number.
//!
//! Slot layout (little-endian):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 8  | magic `INPLJRNL` |
//! | 8  | 2  | version `1` |
//! | 10 | 2  | slot index `0` or `1` |
//! | 12 | 4  | payload length L (≤ 32704) |
//! | 16 | 8  | sequence number |
//! | 24 | 32 | SHA-256 of the payload |
//! | 56 | 4  | zero |
//! | 60 | 4  | CRC-32 of bytes 0..60 |
//! | 64 | L  | payload (the journal as JSON), then zeros to the end of the slot |

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"INPLJRNL";
pub const VERSION: u16 = 1;
pub const SLOT: usize = 32 * 1024;
/// Both slots fill the store partition's reserve.
pub const RESERVE: u64 = crate::locator::RESERVE;
const _: () = assert!(2 * SLOT as u64 == RESERVE);
const HEAD: usize = 64;
pub const MAX_PAYLOAD: usize = SLOT - HEAD;

pub use crate::locator::reserve_offset as offset_in_store;

/// Why a slot is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("the slot is {0} bytes; a journal slot is 32768")]
    Length(usize),
    #[error("no journal magic")]
    Empty,
    #[error("journal slot version {0} is not supported by this inplace")]
    Version(u16),
    #[error("the slot's header is damaged (CRC-32 mismatch)")]
    HeaderCrc,
    #[error("the slot's header is inconsistent: {0}")]
    Header(String),
    #[error("the slot's payload is damaged (SHA-256 mismatch): a write was cut short")]
    Payload,
    #[error("the journal is {0} bytes; a slot holds 32704")]
    TooLarge(usize),
}

/// One slot's bytes for `payload` written as sequence number `seq` into slot `seq % 2`.
pub fn encode(seq: u64, payload: &[u8]) -> Result<Vec<u8>, SlotError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(SlotError::TooLarge(payload.len()));
    }
    let mut b = vec![0u8; SLOT];
    b[0..8].copy_from_slice(MAGIC);
    b[8..10].copy_from_slice(&VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&((seq % 2) as u16).to_le_bytes());
    b[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b[16..24].copy_from_slice(&seq.to_le_bytes());
    b[24..56].copy_from_slice(&Sha256::digest(payload));
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b[HEAD..HEAD + payload.len()].copy_from_slice(payload);
    Ok(b)
}

/// Checks one slot; returns its sequence number and payload. Never panics.
pub fn decode(b: &[u8]) -> Result<(u64, &[u8]), SlotError> {
    if b.len() != SLOT {
        return Err(SlotError::Length(b.len()));
    }
    if &b[0..8] != MAGIC {
        return Err(SlotError::Empty);
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != VERSION {
        return Err(SlotError::Version(version));
    }
    let crc = u32::from_le_bytes([b[60], b[61], b[62], b[63]]);
    if crc != crc32fast::hash(&b[..60]) {
        return Err(SlotError::HeaderCrc);
    }
    let index = u16::from_le_bytes([b[10], b[11]]);
    let len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]) as usize;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&b[16..24]);
    let seq = u64::from_le_bytes(seq);
    if len > MAX_PAYLOAD || u64::from(index) != seq % 2 || b[56..60] != [0; 4] {
        return Err(SlotError::Header(format!("length {len}, slot {index}, sequence {seq}")));
    }
    let payload = &b[HEAD..HEAD + len];
    if Sha256::digest(payload).as_slice() != &b[24..56] {
        return Err(SlotError::Payload);
    }
    Ok((seq, payload))
}

/// The newer valid slot of the two (the reserve's bytes); `None` when neither is valid.
pub fn newest(reserve: &[u8]) -> Option<(u64, &[u8])> {
    if reserve.len() != RESERVE as usize {
        return None;
    }
    let a = decode(&reserve[..SLOT]).ok();
    let b = decode(&reserve[SLOT..]).ok();
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 > x.0 { y } else { x }),
        (x, y) => x.or(y),
    }
}

/// Byte offset, within the reserve, of the slot that sequence number `seq` is written to.
pub fn slot_offset(seq: u64) -> u64 {
    (seq % 2) * SLOT as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reserve_with(writes: &[(u64, &[u8])]) -> Vec<u8> {
        let mut r = vec![0u8; RESERVE as usize];
        for (seq, p) in writes {
            let at = slot_offset(*seq) as usize;
            r[at..at + SLOT].copy_from_slice(&encode(*seq, p).unwrap());
        }
        r
    }

    #[test]
    fn the_newer_slot_wins() {
        let r = reserve_with(&[(1, b"one"), (2, b"two")]);
        assert_eq!(newest(&r), Some((2, &b"two"[..])));
        let r = reserve_with(&[(1, b"one"), (2, b"two"), (3, b"three")]);
        assert_eq!(newest(&r), Some((3, &b"three"[..])));
        assert_eq!(newest(&vec![0u8; RESERVE as usize]), None);
    }

    #[test]
    fn a_torn_write_falls_back_to_the_previous_transition() {
        let mut r = reserve_with(&[(4, b"four"), (5, b"five, written in full")]);
        // The write of sequence 5 was cut after its header: the payload's tail is old bytes.
        let at = slot_offset(5) as usize + HEAD + 6;
        r[at] ^= 0xff;
        assert_eq!(decode(&r[SLOT..]), Err(SlotError::Payload));
        assert_eq!(newest(&r), Some((4, &b"four"[..])));
        // Cut inside the header: the CRC catches it.
        let mut r = reserve_with(&[(4, b"four"), (5, b"five")]);
        r[SLOT + 17] ^= 1;
        assert_eq!(newest(&r), Some((4, &b"four"[..])));
    }

    #[test]
    fn oversized_journals_are_refused() {
        assert!(encode(1, &vec![b'x'; MAX_PAYLOAD + 1]).is_err());
        assert!(encode(1, &vec![b'x'; MAX_PAYLOAD]).is_ok());
    }

    #[test]
    fn the_reserve_ends_at_the_tail_locator() {
        assert_eq!(offset_in_store(64 << 20, 512), Some((64 << 20) - 512 - RESERVE));
        assert_eq!(offset_in_store(1000, 4096), None);
    }

    proptest! {
        #[test]
        fn damaged_slots_never_panic(flips in proptest::collection::vec((0usize..SLOT, any::<u8>()), 1..8), seq in any::<u64>()) {
            let mut b = encode(seq, b"{\"state\":\"carving\"}").unwrap();
            for (at, v) in flips {
                b[at] ^= v;
            }
            let _ = decode(&b);
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut s = b.clone();
            s.resize(SLOT, 0);
            let _ = decode(&s);
            let _ = decode(&b);
        }
    }
}
