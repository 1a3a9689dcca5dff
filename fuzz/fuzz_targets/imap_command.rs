//! Fuzz target: imap_command.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::imap_command(data));
