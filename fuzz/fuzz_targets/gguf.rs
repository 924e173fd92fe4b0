//! GGUF bytes from the fuzzer through a whole model load (see bodies.rs).
#![no_main]

mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::gguf(data));
