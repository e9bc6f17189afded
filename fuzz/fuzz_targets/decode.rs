//! Fuzz target `decode`: see `kapi_fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::decode(data));
