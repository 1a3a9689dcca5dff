//! Fuzz target: the DATA body decoder.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::smtp_body(data));
