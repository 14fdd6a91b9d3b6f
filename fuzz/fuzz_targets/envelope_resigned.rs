//! cargo-fuzz target: `blindrelay_fuzzing::envelope_resigned`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::envelope_resigned(data));
