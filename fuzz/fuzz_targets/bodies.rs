//! What each fuzz target does with its input, shared with the regression test that replays
//! the seeds and every input that once crashed (tests/robust.rs, `fuzz_inputs_replay`).
//! Any input may be refused with an `Error`; none may panic, abort or read out of bounds.
#![allow(dead_code)]

use std::sync::OnceLock;

use webformer::model::{
    Bert, BertConfig, ChatTemplate, Gguf, Llama, LlamaConfig, Message, Safetensors, SentenceConfig, TextStream,
    Tokenizer,
};

/// GGUF bytes through everything a model load does with them: the parser, every tensor, the
/// Llama config, the tokenizer and the model's tensor checks.
pub fn gguf(data: &[u8]) {
    let Ok(g) = Gguf::parse(data, "fuzz.gguf") else { return };
    for t in g.tensors() {
        let _ = g.tensor(&t.name);
    }
    let _ = LlamaConfig::from_gguf(&g);
    if let Ok(tok) = Tokenizer::from_gguf(&g) {
        let _ = tok.encode("Hello, world! 123 <|im_start|>", true);
    }
    let _ = Llama::from_gguf(&g, &mut |_, _| {});
}

/// Splits off a part whose little-endian u16 length leads `data`.
fn part(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u16::from_le_bytes(data.get(..2)?.try_into().ok()?) as usize;
    let rest = &data[2..];
    Some(rest.split_at(n.min(rest.len())))
}

/// A BERT checkpoint split into config.json, sentence_bert_config.json and model.safetensors
/// (each of the first two led by a u16 length), through the config checks, the safetensors
/// reader and the encoder's tensor loading.
pub fn safetensors_config(data: &[u8]) {
    let Some((config, rest)) = part(data) else { return };
    let Some((sentence, weights)) = part(rest) else { return };
    let _ = SentenceConfig::from_json(sentence, br#"{"pooling_mode_mean_tokens": true}"#, None, "fuzz");
    let st = Safetensors::parse(weights, "model.safetensors");
    if let Ok(st) = &st {
        for name in st.names() {
            let _ = st.tensor(name);
        }
    }
    let Ok(config) = BertConfig::from_json(config, "config.json") else { return };
    if let Ok(st) = &st {
        let _ = config.check_layers(st.names(), "config.json");
        let _ = Bert::from_safetensors(config, st);
    }
}

/// The fixed tokenizers of the tokenizer target: a byte-level BPE from GGUF metadata and a
/// WordPiece tokenizer.json (fuzz/resources, written by tests/robust.rs).
fn tokenizers() -> &'static (Tokenizer, Tokenizer) {
    static T: OnceLock<(Tokenizer, Tokenizer)> = OnceLock::new();
    T.get_or_init(|| {
        let gguf = include_bytes!("../resources/tokenizer.gguf");
        let g = Gguf::parse(gguf, "tokenizer.gguf").expect("the resource GGUF parses");
        let bpe = Tokenizer::from_gguf(&g).expect("the resource BPE builds");
        let wp = Tokenizer::from_json(include_bytes!("../resources/tokenizer.json"), "tokenizer.json")
            .expect("the resource tokenizer.json loads");
        (bpe, wp)
    })
}

/// Text and token ids through both tokenizers: the first byte picks encode + decode, decode
/// and streaming decode of ids, parsing a tokenizer.json, or a chat template.
pub fn tokenizer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (bpe, wp) = tokenizers();
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        0 => {
            for tok in [bpe, wp] {
                if let Ok(ids) = tok.encode(&text, true) {
                    let _ = tok.decode(&ids, false);
                }
            }
        }
        1 => {
            let ids: Vec<u32> = rest.chunks(2).map(|c| c.iter().fold(0u32, |a, &b| a << 8 | b as u32)).collect();
            for tok in [bpe, wp] {
                let _ = tok.decode(&ids, true);
                let mut stream = TextStream::new(tok);
                for &id in ids.iter().take(64) {
                    if stream.push(id).is_err() {
                        break;
                    }
                }
            }
        }
        2 => {
            if let Ok(t) = Tokenizer::from_json(rest, "fuzz.json") {
                let _ = t.encode("hello world", true);
            }
        }
        _ => {
            if let Ok(t) = ChatTemplate::from_jinja(&text, "fuzz") {
                let _ = t.render(&[Message::system("s"), Message::user("u")], true);
            }
        }
    }
}
