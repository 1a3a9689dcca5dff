//! Fuzz target: command framing and parsing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::smtp_command(data));
