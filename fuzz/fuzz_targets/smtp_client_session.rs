//! Fuzz target: smtp_client_session.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::smtp_client_session(data));
