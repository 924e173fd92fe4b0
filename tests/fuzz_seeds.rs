//! Writes the fuzz targets' seed corpus and resources (fuzz/seeds/, fuzz/resources/) from the
//! tiny models of the robustness tests. Run by hand when the formats' writers change:
//! `cargo test --test fuzz_seeds -- --ignored`. The outputs are committed.

mod tiny;

use std::path::PathBuf;

fn out(dir: &str, name: &str, bytes: &[u8]) {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

/// A safetensors_config input: u16 length + config.json, u16 length + sentence config, weights.
fn bert_input(config: &str, sentence: &str, weights: &[u8]) -> Vec<u8> {
    let mut v = (config.len() as u16).to_le_bytes().to_vec();
    v.extend(config.as_bytes());
    v.extend((sentence.len() as u16).to_le_bytes());
    v.extend(sentence.as_bytes());
    v.extend(weights);
    v
}

#[test]
#[ignore = "writes the committed fuzz seeds; run by hand"]
fn write_fuzz_seeds() {
    // The tokenizer target's fixed tokenizers.
    let mut tok = tiny::GgufSpec::default();
    tok.set("general.architecture", tiny::Meta::Str("llama".into()));
    tok.set("tokenizer.ggml.model", tiny::Meta::Str("gpt2".into()));
    let mut tokens = tiny::tokens();
    tokens.extend(["he", "ll", "hell", "hello", "Ġ", "Ġw", "<|im_start|>"].map(String::from));
    tok.set("tokenizer.ggml.tokens", tiny::Meta::Strings(tokens));
    tok.set(
        "tokenizer.ggml.merges",
        tiny::Meta::Strings(["h e", "l l", "he ll", "hell o", "Ġ w"].map(String::from).to_vec()),
    );
    out("resources", "tokenizer.gguf", &tok.build());
    out("resources", "tokenizer.json", tiny::wordpiece_tokenizer(&["hello", "world", "##s", "the"]).as_bytes());
    // GGUF seeds: a whole tiny Llama (one layer, to stay small) and the tokenizer-only file.
    let mut llama = tiny::llama(1);
    llama.set("llama.block_count", tiny::Meta::U32(1));
    llama.remove_tensors("blk.1.");
    out("seeds/gguf", "tiny-llama.gguf", &llama.build());
    let mut q8 = llama.clone();
    *q8.tensor_mut("blk.0.ffn_up.weight") = tiny::Data::Raw(8, tiny::q8_0(2, tiny::FFN, tiny::HIDDEN));
    out("seeds/gguf", "tiny-llama-q8.gguf", &q8.build());
    out("seeds/gguf", "tokenizer.gguf", &tok.build());
    // safetensors_config seeds: a one-layer BERT, and one with a broken offset.
    let t = tiny::bert_tensors(3, 1, 20);
    let t: Vec<(&str, Vec<usize>, Vec<f32>)> = t.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect();
    let sentence = r#"{"max_seq_length": 16, "do_lower_case": false}"#;
    out(
        "seeds/safetensors_config",
        "tiny-bert",
        &bert_input(&tiny::bert_config(1, 20), sentence, &tiny::safetensors(&t)),
    );
    let small = tiny::safetensors(&[("a", vec![2], vec![1.0, 2.0]), ("b", vec![3], vec![3.0, 4.0, 5.0])]);
    out("seeds/safetensors_config", "two-tensors", &bert_input("{}", "{}", &small));
    // tokenizer seeds: one per mode.
    out("seeds/tokenizer", "encode", b"\x00Hello world, hello <|im_start|> 123 \xc3\xa9\xf0\x9f\xa4\x96");
    out("seeds/tokenizer", "decode", b"\x01\x00\x01\x00\x02\x00\x40\x00\x45\xff\xff");
    out("seeds/tokenizer", "json", &[b"\x02".as_slice(), tiny::wordpiece_tokenizer(&["a"]).as_bytes()].concat());
    out(
        "seeds/tokenizer",
        "chat",
        b"\x03{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
    );
}
