//! Text and ids through the tokenizers and the chat template (see bodies.rs).
#![no_main]

mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::tokenizer(data));
