//! A BERT config.json + sentence_bert_config.json + model.safetensors (see bodies.rs).
#![no_main]

mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::safetensors_config(data));
