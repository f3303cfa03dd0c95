//! The image header, manifest, chunk index and signature block parsers must reject any input
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = inplace::image::parse_all(data);
    let _ = inplace::image::format::Header::decode(data);
    let _ = inplace::image::format::SignatureBlock::decode(data);
    let _ = inplace::image::manifest::Manifest::decode(data, 1);
});
