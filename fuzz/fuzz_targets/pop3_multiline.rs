//! Fuzz target: pop3_multiline.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::pop3_multiline(data));
