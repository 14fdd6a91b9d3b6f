//! cargo-fuzz target: `blindrelay_fuzzing::v2::relay_check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::v2::relay_check(data));
