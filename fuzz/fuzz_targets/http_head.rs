//! Fuzz target `http_head`: see `kapi_fuzz::http_head`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::http_head(data));
