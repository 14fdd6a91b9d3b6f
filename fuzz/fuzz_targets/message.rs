//! cargo-fuzz target: `blindrelay_fuzzing::message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::message(data));
