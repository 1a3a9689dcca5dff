//! Fuzz target: reply and EHLO response parsing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::smtp_reply(data));
