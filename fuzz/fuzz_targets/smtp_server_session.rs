//! Fuzz target: the SMTP server session driven by a script of input
//! chunks, decisions, time and TLS events.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::smtp_server_session(data));
