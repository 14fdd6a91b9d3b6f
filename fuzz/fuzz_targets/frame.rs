//! cargo-fuzz target: `blindrelay_fuzzing::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::frame(data));
