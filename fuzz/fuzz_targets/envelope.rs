//! cargo-fuzz target: `blindrelay_fuzzing::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::envelope(data));
