//! Fuzz target: mailstore_names.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::mailstore_names(data));
