//! Fuzz target: imap_framer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::imap_framer(data));
