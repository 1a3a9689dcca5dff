//! Fuzz target: mailstore_records.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::mailstore_records(data));
