//! Tiny model files for the robustness tests, written from the formats' specs (GGUF:
//! ggml/docs/gguf.md; safetensors: its README), with hooks to break them one field at a time.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One GGUF metadata value.
#[derive(Clone, Debug)]
pub enum Meta {
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strings(Vec<String>),
}

/// One tensor: F32 values, or raw bytes of a GGUF type id.
#[derive(Clone, Debug)]
pub enum Data {
    F32(Vec<f32>),
    Raw(u32, Vec<u8>),
}

/// A GGUF file under construction: metadata and tensors in order, editable before `build`.
#[derive(Clone, Debug, Default)]
pub struct GgufSpec {
    pub meta: Vec<(String, Meta)>,
    /// (name, shape outermost first, data)
    pub tensors: Vec<(String, Vec<usize>, Data)>,
}

fn gstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl GgufSpec {
    /// Sets (or adds) a metadata key.
    pub fn set(&mut self, key: &str, v: Meta) {
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = v,
            None => self.meta.push((key.into(), v)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.meta.retain(|(k, _)| k != key);
    }

    pub fn tensor_mut(&mut self, name: &str) -> &mut Data {
        &mut self.tensors.iter_mut().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}")).2
    }

    pub fn remove_tensors(&mut self, prefix: &str) {
        self.tensors.retain(|(n, _, _)| !n.starts_with(prefix));
    }

    /// The file's bytes (version 3, alignment 32).
    pub fn build(&self) -> Vec<u8> {
        let pad = |n: usize| n.div_ceil(32) * 32;
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.meta.len() as u64).to_le_bytes());
        for (k, v) in &self.meta {
            gstr(&mut out, k);
            match v {
                Meta::U32(x) => out.extend(4u32.to_le_bytes().into_iter().chain(x.to_le_bytes())),
                Meta::I32(x) => out.extend(5u32.to_le_bytes().into_iter().chain(x.to_le_bytes())),
                Meta::F32(x) => out.extend(6u32.to_le_bytes().into_iter().chain(x.to_le_bytes())),
                Meta::Bool(b) => out.extend(7u32.to_le_bytes().into_iter().chain([*b as u8])),
                Meta::Str(s) => {
                    out.extend(8u32.to_le_bytes());
                    gstr(&mut out, s);
                }
                Meta::Strings(a) => {
                    out.extend(9u32.to_le_bytes());
                    out.extend(8u32.to_le_bytes());
                    out.extend((a.len() as u64).to_le_bytes());
                    for s in a {
                        gstr(&mut out, s);
                    }
                }
            }
        }
        let bytes: Vec<(u32, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(_, _, d)| match d {
                Data::F32(v) => (0, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Data::Raw(ty, b) => (*ty, b.clone()),
            })
            .collect();
        let mut offset = 0usize;
        for ((name, shape, _), (ty, b)) in self.tensors.iter().zip(&bytes) {
            gstr(&mut out, name);
            out.extend((shape.len() as u32).to_le_bytes());
            for d in shape.iter().rev() {
                out.extend((*d as u64).to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset = pad(offset + b.len());
        }
        out.resize(pad(out.len()), 0);
        for (_, b) in &bytes {
            out.extend(b);
            out.resize(pad(out.len()), 0);
        }
        out
    }
}

/// Sizes of the tiny Llama: width 32 (one Q8_0 block), 4 heads of 8, 2 KV heads, FFN 64,
/// 64 single-character tokens, 2 layers.
pub const HIDDEN: usize = 32;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const FFN: usize = 64;
pub const VOCAB: usize = 64;
pub const LAYERS: usize = 2;

/// The 64 tokens: letters, digits, '!' and '.', each its own byte-level spelling.
pub fn tokens() -> Vec<String> {
    ('a'..='z').chain('A'..='Z').chain('0'..='9').chain(['!', '.']).map(String::from).collect()
}

fn values(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// A valid tiny Llama GGUF (F32 weights, seeded random; no end-of-sequence token, so
/// generation runs until `max_tokens`).
pub fn llama(seed: u64) -> GgufSpec {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = GgufSpec::default();
    s.set("general.architecture", Meta::Str("llama".into()));
    for (k, v) in [
        ("llama.embedding_length", HIDDEN),
        ("llama.attention.head_count", HEADS),
        ("llama.attention.head_count_kv", KV_HEADS),
        ("llama.feed_forward_length", FFN),
        ("llama.block_count", LAYERS),
        ("llama.context_length", 4096),
    ] {
        s.set(k, Meta::U32(v as u32));
    }
    s.set("llama.rope.freq_base", Meta::F32(10000.0));
    s.set("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5));
    s.set("tokenizer.ggml.model", Meta::Str("gpt2".into()));
    s.set("tokenizer.ggml.tokens", Meta::Strings(tokens()));
    s.set("tokenizer.ggml.merges", Meta::Strings(vec![]));
    let (d, q, kv) = (HIDDEN, HIDDEN, KV_HEADS * HIDDEN / HEADS);
    let mut t = |name: &str, shape: Vec<usize>, scale: f32| {
        let n = shape.iter().product();
        let data = if shape.len() == 1 { vec![1.0; n] } else { values(&mut rng, n, scale) };
        s.tensors.push((name.into(), shape, Data::F32(data)));
    };
    t("token_embd.weight", vec![VOCAB, d], 1.0);
    t("output_norm.weight", vec![d], 1.0);
    for l in 0..LAYERS {
        let p = |n: &str| format!("blk.{l}.{n}.weight");
        t(&p("attn_norm"), vec![d], 1.0);
        t(&p("attn_q"), vec![q, d], 0.3);
        t(&p("attn_k"), vec![kv, d], 0.3);
        t(&p("attn_v"), vec![kv, d], 0.3);
        t(&p("attn_output"), vec![d, q], 0.3);
        t(&p("ffn_norm"), vec![d], 1.0);
        t(&p("ffn_gate"), vec![FFN, d], 0.3);
        t(&p("ffn_up"), vec![FFN, d], 0.3);
        t(&p("ffn_down"), vec![d, FFN], 0.3);
    }
    s
}

/// Q8_0 blocks (f16 scale + 32 int8) for `rows` x `cols` seeded values, scale 1/64.
pub fn q8_0(seed: u64, rows: usize, cols: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..rows * cols / 32 {
        out.extend(half::f16::from_f32(1.0 / 64.0).to_le_bytes());
        out.extend((0..32).map(|_| rng.random_range(-100i8..100) as u8));
    }
    out
}

/// A safetensors file of F32 tensors (name, shape, values), in the order given.
pub fn safetensors(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, v) in tensors {
        let start = data.len();
        data.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        header.insert(
            name.to_string(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [start, data.len()] }),
        );
    }
    safetensors_with_header(&serde_json::Value::Object(header).to_string(), &data)
}

/// A safetensors file from a header given as JSON text and the data bytes.
pub fn safetensors_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// A tiny BERT folder's config.json.
pub fn bert_config(layers: usize, vocab: usize) -> String {
    serde_json::json!({
        "model_type": "bert", "vocab_size": vocab, "hidden_size": 8, "num_hidden_layers": layers,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"
    })
    .to_string()
}

/// The tensors of a tiny BERT (hidden 8, FFN 16, 16 positions) with `layers` layers.
pub fn bert_tensors(seed: u64, layers: usize, vocab: usize) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (d, f) = (8, 16);
    let mut t = vec![
        ("embeddings.word_embeddings.weight".to_string(), vec![vocab, d]),
        ("embeddings.position_embeddings.weight".into(), vec![16, d]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, d]),
        ("embeddings.LayerNorm.weight".into(), vec![d]),
        ("embeddings.LayerNorm.bias".into(), vec![d]),
    ];
    for l in 0..layers {
        for (name, shape) in [
            ("attention.self.query", vec![d, d]),
            ("attention.self.key", vec![d, d]),
            ("attention.self.value", vec![d, d]),
            ("attention.output.dense", vec![d, d]),
            ("attention.output.LayerNorm", vec![d]),
            ("intermediate.dense", vec![f, d]),
            ("output.dense", vec![d, f]),
            ("output.LayerNorm", vec![d]),
        ] {
            let out = shape[0];
            t.push((format!("encoder.layer.{l}.{name}.weight"), shape));
            t.push((format!("encoder.layer.{l}.{name}.bias"), vec![out]));
        }
    }
    t.into_iter()
        .map(|(n, s)| {
            let v = values(&mut rng, s.iter().product(), 0.5);
            (n, s, v)
        })
        .collect()
}

/// A WordPiece tokenizer.json whose vocabulary is `[PAD] [UNK] [CLS] [SEP]` and then `words`.
pub fn wordpiece_tokenizer(words: &[&str]) -> String {
    let mut vocab = serde_json::Map::new();
    for (i, w) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().chain(words).enumerate() {
        vocab.insert(w.to_string(), i.into());
    }
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

/// Writes a tiny BERT folder (config, weights, tokenizer) into `dir`.
pub fn write_bert(dir: &std::path::Path, config: &str, tensors: &[(String, Vec<usize>, Vec<f32>)], tokenizer: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    let t: Vec<(&str, Vec<usize>, Vec<f32>)> =
        tensors.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect();
    std::fs::write(dir.join("model.safetensors"), safetensors(&t)).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer).unwrap();
}

/// A fresh temporary folder for one test.
pub fn temp_dir(label: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("webformer-robust-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
