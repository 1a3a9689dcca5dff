//! Fuzz target: pop3_server_session.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::pop3_server_session(data));
