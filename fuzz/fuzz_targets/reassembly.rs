//! cargo-fuzz target: `blindrelay_fuzzing::reassembly`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| blindrelay_fuzzing::reassembly(data));
