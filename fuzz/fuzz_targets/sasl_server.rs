//! Fuzz target: sasl_server.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::sasl_server(data));
