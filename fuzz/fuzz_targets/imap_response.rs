//! Fuzz target: imap_response.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::imap_response(data));
