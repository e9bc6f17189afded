//! Fuzz target `selectors`: see `kapi_fuzz::selectors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::selectors(data));
