//! The job's journal is read back from a disk's reserve after a power cut: any bytes in a slot
//! must give a journal or an error, never a panic, and a valid slot re-encodes to the same bytes.
#![no_main]

use inplace::job::find::Record;
use inplace::job::reserve;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut slot = data.to_vec();
    slot.resize(reserve::SLOT, 0);
    if let Ok((seq, payload)) = reserve::decode(&slot) {
        assert_eq!(reserve::encode(seq, payload).unwrap(), slot);
        let _ = serde_json::from_slice::<Record>(payload);
    }
    let _ = serde_json::from_slice::<Record>(data);
});
