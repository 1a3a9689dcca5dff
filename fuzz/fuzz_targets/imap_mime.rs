//! Fuzz target: imap_mime.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::imap_mime(data));
