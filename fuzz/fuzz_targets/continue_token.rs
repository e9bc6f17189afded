//! Fuzz target `continue_token`: see `kapi_fuzz::continue_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::continue_token(data));
