//! Fuzz target `patch`: see `kapi_fuzz::patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::patch(data));
