//! cargo-fuzz target: `blindrelay_fuzzing::certificate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::certificate(data));
