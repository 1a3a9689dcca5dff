//! Fuzz target: imap_sequence_set.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailkit_fuzz::imap_sequence_set(data));
