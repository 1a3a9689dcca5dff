//! Fuzz target: sasl_client.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::sasl_client(data));
