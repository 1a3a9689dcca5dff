//! Fuzz target: imap_utf7.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::imap_utf7(data));
