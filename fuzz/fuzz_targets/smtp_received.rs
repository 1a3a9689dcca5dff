//! Fuzz target: smtp_received.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::smtp_received(data));
