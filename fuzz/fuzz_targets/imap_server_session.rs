//! Fuzz target: imap_server_session.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::imap_server_session(data));
