//! Fuzz target: smtp_downgrade.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::smtp_downgrade(data));
