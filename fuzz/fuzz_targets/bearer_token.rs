//! Fuzz target `bearer_token`: see `kapi_fuzz::bearer_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::bearer_token(data));
