//! cargo-fuzz target: `blindrelay_fuzzing::v2::ds_chunks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::v2::ds_chunks(data));
