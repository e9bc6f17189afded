//! Fuzz target `wal`: see `kapi_fuzz::wal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kapi_fuzz::wal(data));
