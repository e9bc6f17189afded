//! Fuzz target `resource_version`: see `kapi_fuzz::resource_version`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::resource_version(data));
