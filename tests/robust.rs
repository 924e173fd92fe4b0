//! Hostile and broken inputs through the library: config values out of range, non-finite
//! weights, inconsistent files, options out of range, NaN at run time. Each gives an `Error`
//! naming the file and the key or tensor (or the option) and the accepted range; none panics.

mod common;
mod tiny;

use tiny::{Data, Meta};
use webformer::model::files::load_embedder;
use webformer::model::{
    BertConfig, GenerateOptions, Generator, Gguf, Llama, LlamaConfig, Safetensors, Sampling, SentenceConfig,
};
use webformer::Error;

fn config_err(spec: &tiny::GgufSpec) -> String {
    let bytes = spec.build();
    let g = Gguf::parse(&bytes, "tiny.gguf").expect("the tiny file parses");
    LlamaConfig::from_gguf(&g).expect_err("the config is refused").to_string()
}

fn contains_all(e: &str, want: &[&str]) {
    for w in want {
        assert!(e.contains(w), "{e:?} should mention {w:?}");
    }
}

#[test]
fn the_tiny_llama_is_valid() {
    let bytes = tiny::llama(1).build();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    let m = Llama::from_gguf(&g, &mut |_, _| {}).unwrap();
    assert_eq!((m.config.hidden, m.config.n_layers, m.config.vocab), (tiny::HIDDEN, tiny::LAYERS, tiny::VOCAB));
}

#[test]
fn gguf_config_values_out_of_range_name_the_file_the_key_and_the_range() {
    let u = |v: u32| Meta::U32(v);
    let f = Meta::F32;
    let cases: Vec<(&str, Meta, &[&str])> = vec![
        ("llama.context_length", u(0), &["llama.context_length is 0", "must be 1 to"]),
        ("llama.embedding_length", u(0), &["llama.embedding_length is 0", "must be 1 to"]),
        ("llama.attention.head_count", u(0), &["llama.attention.head_count is 0", "must be 1 to 32"]),
        ("llama.attention.head_count", u(5), &["head_count is 5", "does not divide"]),
        ("llama.attention.head_count_kv", u(8), &["head_count_kv is 8", "must be 1 to 4"]),
        ("llama.attention.key_length", u(0), &["llama.attention.key_length is 0", "must be 2 to"]),
        ("llama.attention.key_length", u(7), &["key_length is 7", "must be even"]),
        ("llama.feed_forward_length", u(0), &["llama.feed_forward_length is 0"]),
        ("llama.rope.freq_base", f(0.0), &["llama.rope.freq_base is 0", "finite number above 1"]),
        ("llama.rope.freq_base", f(-5.0), &["llama.rope.freq_base is -5"]),
        ("llama.rope.freq_base", f(f32::NAN), &["llama.rope.freq_base is NaN"]),
        ("llama.rope.freq_base", f(f32::INFINITY), &["llama.rope.freq_base is inf"]),
        ("llama.attention.layer_norm_rms_epsilon", f(0.0), &["layer_norm_rms_epsilon is 0", "above 0 and below 1"]),
        ("llama.attention.layer_norm_rms_epsilon", f(-1e-5), &["layer_norm_rms_epsilon is -0.0000"]),
        ("llama.attention.layer_norm_rms_epsilon", f(f32::NAN), &["layer_norm_rms_epsilon is NaN"]),
        ("llama.block_count", u(0), &["llama.block_count is 0", "must be 1 to"]),
        ("llama.block_count", u(3), &["llama.block_count is 3", "tensors for 2 layers"]),
        ("llama.block_count", u(1), &["llama.block_count is 1", "tensors for 2 layers"]),
        ("tokenizer.ggml.bos_token_id", u(64), &["tokenizer.ggml.bos_token_id is 64", "below the vocabulary size 64"]),
        ("tokenizer.ggml.eos_token_id", u(1000), &["tokenizer.ggml.eos_token_id is 1000"]),
        ("llama.vocab_size", u(100), &["llama.vocab_size is 100", "tokenizer.ggml.tokens has 64 entries"]),
        ("llama.context_length", Meta::I32(-1), &["llama.context_length", "fits in u32"]),
    ];
    for (key, value, want) in cases {
        let mut spec = tiny::llama(2);
        spec.set(key, value.clone());
        let e = config_err(&spec);
        assert!(e.starts_with("tiny.gguf: "), "{key}={value:?}: {e}");
        contains_all(&e, want);
    }
}

#[test]
fn a_tokenizer_shorter_than_the_embedding_table_is_refused_at_load() {
    let mut spec = tiny::llama(3);
    let mut short = tiny::tokens();
    short.truncate(60);
    spec.set("tokenizer.ggml.tokens", Meta::Strings(short));
    let bytes = spec.build();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    let e = Llama::from_gguf(&g, &mut |_, _| {}).map(|_| ()).unwrap_err().to_string();
    contains_all(&e, &["tiny.gguf", "token_embd.weight", "[64, 32]", "[60, 32]"]);
}

#[test]
fn an_overflowing_tensor_size_is_reported_as_such() {
    let mut spec = tiny::GgufSpec::default();
    spec.set("general.architecture", Meta::Str("llama".into()));
    // 2^31 x 2^31 f32: 2^62 elements fit in 64 bits, their 2^64 bytes do not.
    spec.tensors.push(("huge".into(), vec![1 << 31, 1 << 31], Data::Raw(0, vec![])));
    let e = Gguf::parse(&spec.build(), "huge.gguf").unwrap_err().to_string();
    contains_all(&e, &["huge.gguf", "'huge'", "too large", "overflows 64 bits"]);
    assert!(!e.contains("block size"), "{e}");
}

fn load_err(spec: &tiny::GgufSpec) -> String {
    let bytes = spec.build();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    Llama::from_gguf(&g, &mut |_, _| {}).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn non_finite_weights_are_refused_at_load_with_the_tensor_named() {
    for (tensor, at, v, shown) in [
        ("blk.0.attn_norm.weight", 3, f32::NAN, "NaN at element 3"),
        ("output_norm.weight", 0, f32::INFINITY, "inf at element 0"),
        ("blk.1.ffn_down.weight", 100, f32::NEG_INFINITY, "-inf at element 100"),
    ] {
        let mut spec = tiny::llama(4);
        let Data::F32(w) = spec.tensor_mut(tensor) else { unreachable!() };
        w[at] = v;
        let e = load_err(&spec);
        contains_all(&e, &["tiny.gguf", &format!("tensor '{tensor}' has {shown}"), "corrupt"]);
    }
    // Q8_0: the f16 scale of block 5 is NaN (then infinity).
    for (bits, shown) in [(0x7e00u16, "NaN"), (0x7c00, "inf")] {
        let mut spec = tiny::llama(5);
        let mut q = tiny::q8_0(6, tiny::FFN, tiny::HIDDEN);
        q[5 * 34..5 * 34 + 2].copy_from_slice(&bits.to_le_bytes());
        *spec.tensor_mut("blk.1.ffn_up.weight") = Data::Raw(8, q);
        let e = load_err(&spec);
        contains_all(&e, &["tensor 'blk.1.ffn_up.weight'", &format!("has {shown} as the scale of block 5")]);
    }
    // The same file with a sound Q8_0 block loads.
    let mut spec = tiny::llama(5);
    *spec.tensor_mut("blk.1.ffn_up.weight") = Data::Raw(8, tiny::q8_0(6, tiny::FFN, tiny::HIDDEN));
    let bytes = spec.build();
    Llama::from_gguf(&Gguf::parse(&bytes, "tiny.gguf").unwrap(), &mut |_, _| {}).unwrap();
}

#[test]
fn generation_options_out_of_range_are_refused_with_the_range() {
    for t in [-1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let e = GenerateOptions { temperature: t, ..Default::default() }.check().unwrap_err().to_string();
        contains_all(&e, &["temperature is", "a finite number >= 0"]);
    }
    GenerateOptions { temperature: 0.0, ..Default::default() }.check().unwrap();
    GenerateOptions { temperature: 1e6, ..Default::default() }.check().unwrap();
    for p in [0.0, -0.5, 1.5, f32::NAN, f32::INFINITY] {
        let e = Sampling { top_k: 0, top_p: p }.check().unwrap_err().to_string();
        contains_all(&e, &["top-p is", "in (0, 1]"]);
    }
    Sampling { top_k: 40, top_p: 1.0 }.check().unwrap();
    Sampling { top_k: 0, top_p: 1e-6 }.check().unwrap();
}

#[test]
fn sentence_transformers_max_seq_length_zero_is_refused() {
    let pool = br#"{"pooling_mode_mean_tokens": true}"#;
    let e = SentenceConfig::from_json(br#"{"max_seq_length": 0}"#, pool, None, "dir").unwrap_err().to_string();
    contains_all(&e, &["dir/sentence_bert_config.json", "max_seq_length is 0", "at least 1"]);
    assert_eq!(SentenceConfig::from_json(br#"{"max_seq_length": 7}"#, pool, None, "dir").unwrap().max_seq_length, 7);
}

/// tokenizers 0.22 panics on malformed JSON inside a "decoder" section (found by fuzzing,
/// fuzz/regressions/tokenizer); webformer refuses it with the file and the position.
#[test]
fn a_malformed_tokenizer_decoder_is_refused_not_a_panic() {
    let json = br###"{"version":"1.0","decoder":{"cleanup":true,"prefix":"##","type":"Wor{% for },"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0}}}"###;
    let e = webformer::model::Tokenizer::from_json(json, "dir/tokenizer.json").expect_err("refused").to_string();
    contains_all(&e, &["dir/tokenizer.json", "not a readable tokenizer.json", "column"]);
}

#[test]
fn a_template_with_undefined_pieces_is_refused_not_a_panic() {
    // tokenizers 0.22 panics on the first encode of either (found by the tokenizer fuzz target;
    // that input is in fuzz/regressions/tokenizer/).
    let base: serde_json::Value = serde_json::from_str(&tiny::wordpiece_tokenizer(&["hello"])).unwrap();
    let ok = webformer::model::Tokenizer::from_json(base.to_string().as_bytes(), "t.json").expect("the valid template");
    assert_eq!(ok.encode("hello", true).unwrap(), vec![2, 4, 3]);
    let mut undefined = base.clone();
    let tokens = undefined["post_processor"]["special_tokens"].as_object_mut().unwrap();
    let sep = tokens.remove("[SEP]").unwrap();
    tokens.insert("[QEP]".into(), sep);
    let mut single_b = base.clone();
    single_b["post_processor"]["single"][1]["Sequence"]["id"] = "B".into();
    let mut nested = serde_json::json!({"type": "Sequence", "processors": [{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": false}]});
    nested["processors"].as_array_mut().unwrap().push(undefined["post_processor"].clone());
    let mut in_sequence = base.clone();
    in_sequence["post_processor"] = nested;
    // The same two faults spelled as serde also reads them: pieces as arrays, no "type" tag.
    let mut as_arrays = base.clone();
    as_arrays["post_processor"]["single"][0] = serde_json::json!({"SpecialToken": ["[QEP]", 0]});
    let mut untagged_b = base.clone();
    untagged_b["post_processor"].as_object_mut().unwrap().remove("type");
    untagged_b["post_processor"]["single"][1] = serde_json::json!({"Sequence": ["B", 0]});
    for (json, want) in [
        (undefined, "post_processor.single uses the special token \"[SEP]\", which post_processor.special_tokens does not define"),
        (single_b, "post_processor.single uses sequence B"),
        (in_sequence, "post_processor.processors[1].single uses the special token \"[SEP]\""),
        (as_arrays, "post_processor.single uses the special token \"[QEP]\""),
        (untagged_b, "post_processor.single uses sequence B"),
    ] {
        let e = webformer::model::Tokenizer::from_json(json.to_string().as_bytes(), "dir/tokenizer.json");
        contains_all(&e.expect_err("refused").to_string(), &["dir/tokenizer.json", want]);
    }
}

#[test]
fn bert_config_values_out_of_range_name_the_key() {
    let base: serde_json::Value = serde_json::from_str(&tiny::bert_config(1, 20)).unwrap();
    for (key, value, want) in [
        ("hidden_size", serde_json::json!(0), "hidden_size is 0; it must be 1 to"),
        ("num_attention_heads", serde_json::json!(0), "num_attention_heads is 0"),
        ("num_hidden_layers", serde_json::json!(0), "num_hidden_layers is 0"),
        ("max_position_embeddings", serde_json::json!(0), "max_position_embeddings is 0"),
        ("vocab_size", serde_json::json!(0), "vocab_size is 0"),
        ("layer_norm_eps", serde_json::json!(0.0), "layer_norm_eps is 0; it must be a finite number above 0"),
        ("layer_norm_eps", serde_json::json!(-1.0), "layer_norm_eps is -1"),
        ("pad_token_id", serde_json::json!(20), "pad_token_id is 20"),
    ] {
        let mut c = base.clone();
        c[key] = value;
        let e = BertConfig::from_json(c.to_string().as_bytes(), "config.json").unwrap_err().to_string();
        contains_all(&e, &["config.json: ", want]);
    }
    let c = BertConfig::from_json(tiny::bert_config(2, 20).as_bytes(), "config.json").unwrap();
    let names: Vec<String> = tiny::bert_tensors(1, 1, 20).into_iter().map(|t| t.0).collect();
    let e = c.check_layers(names.iter().map(String::as_str), "config.json").unwrap_err().to_string();
    contains_all(&e, &["num_hidden_layers is 2", "tensors for 1 layers"]);
}

#[test]
fn safetensors_offset_errors_name_the_tensor() {
    let data = vec![0u8; 48];
    let cases = [
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,20]}}"#,
            "tensor 'b' (F32, shape [4]) needs 16 bytes but its data_offsets are [8, 20]",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            "tensor 'b' starts at byte 4 of the data, but tensor 'a' ends at byte 8",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[16],"data_offsets":[0,64]}}"#,
            "tensor 'a' ends at byte 64 of the data, but the file holds only 48 bytes",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
            "tensor 'a' has shape [4294967296, 4294967296], whose byte size overflows 64 bits",
        ),
        (r#"{"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}"#, "tensor 'a' has dtype \"Q9\""),
    ];
    for (header, want) in cases {
        let bytes = tiny::safetensors_with_header(header, &data);
        let e = Safetensors::parse(&bytes, "model.safetensors").unwrap_err().to_string();
        contains_all(&e, &["model.safetensors: ", want]);
    }
}

fn bert_folder(label: &str, layers_in_config: usize, tensors_layers: usize, words: &[&str]) -> std::path::PathBuf {
    let dir = tiny::temp_dir(label);
    let tensors = tiny::bert_tensors(7, tensors_layers, 20);
    tiny::write_bert(&dir, &tiny::bert_config(layers_in_config, 20), &tensors, &tiny::wordpiece_tokenizer(words));
    dir
}

#[test]
fn bert_folders_inconsistent_with_their_config_are_refused_at_load() {
    let Some(ctx) = common::gpu() else { return };
    let words: Vec<String> = (0..16).map(|i| format!("w{i}")).collect();
    let ok: Vec<&str> = words.iter().map(String::as_str).collect();
    load_embedder(&ctx, &bert_folder("ok", 1, 1, &ok)).unwrap();
    let e = load_embedder(&ctx, &bert_folder("layers", 2, 1, &ok)).map(|_| ()).unwrap_err().to_string();
    contains_all(&e, &["config.json", "num_hidden_layers is 2", "tensors for 1 layers"]);
    // 4 specials + 20 words: ids up to 23, beyond the embedding table of 20 rows.
    let words: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    let long: Vec<&str> = words.iter().map(String::as_str).collect();
    let e = load_embedder(&ctx, &bert_folder("vocab", 1, 1, &long)).map(|_| ()).unwrap_err().to_string();
    contains_all(&e, &["tokenizer.json", "token id 23", "vocabulary of 20"]);
    // A NaN in a LayerNorm weight.
    let dir = tiny::temp_dir("nan");
    let mut tensors = tiny::bert_tensors(7, 1, 20);
    tensors.iter_mut().find(|t| t.0 == "encoder.layer.0.output.LayerNorm.weight").unwrap().2[2] = f32::NAN;
    tiny::write_bert(&dir, &tiny::bert_config(1, 20), &tensors, &tiny::wordpiece_tokenizer(&ok));
    let e = load_embedder(&ctx, &dir).map(|_| ()).unwrap_err().to_string();
    contains_all(&e, &["model.safetensors", "tensor 'encoder.layer.0.output.LayerNorm.weight' has NaN at element 2"]);
}

/// A tiny Llama whose feed-forward overflows f32 at run time: its weights are finite (1e20),
/// but gate · up reaches 1e40.
fn overflowing_llama() -> Llama {
    let mut spec = tiny::llama(8);
    for t in ["blk.0.ffn_gate.weight", "blk.0.ffn_up.weight"] {
        let Data::F32(w) = spec.tensor_mut(t) else { unreachable!() };
        w.iter_mut().for_each(|x| *x *= 1e20);
    }
    let bytes = spec.build();
    Llama::from_gguf(&Gguf::parse(&bytes, "tiny.gguf").unwrap(), &mut |_, _| {}).unwrap()
}

#[test]
fn nan_at_run_time_is_an_error_naming_the_first_node() {
    let Some(ctx) = common::gpu() else { return };
    let mut gen = Generator::new(&ctx, overflowing_llama(), 16, Sampling::default()).unwrap();
    let e = common::block(gen.logits(&[1, 2, 3])).unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }), "{e}");
    let e = e.to_string();
    contains_all(&e, &["non-finite values (NaN or infinity) in the logits", "node #", "is the first to have"]);
    // Layer 0's feed-forward is where it starts: the node named is one of its nodes.
    assert!(["mul", "matmul", "linear"].iter().any(|op| e.contains(op)), "{e}");
    let options = GenerateOptions { max_tokens: 4, ..Default::default() };
    let mut seen = Vec::new();
    let e = common::block(gen.generate(&[1, 2], &options, |t| {
        seen.push(t);
        true
    }))
    .unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }), "{e}");
    assert!(seen.is_empty(), "no token may reach the caller from NaN logits: {seen:?}");
    // A sound model generates.
    let bytes = tiny::llama(9).build();
    let model = Llama::from_gguf(&Gguf::parse(&bytes, "tiny.gguf").unwrap(), &mut |_, _| {}).unwrap();
    let mut gen = Generator::new(&ctx, model, 16, Sampling::default()).unwrap();
    let out = common::block(gen.generate(&[1, 2], &options, |_| true)).unwrap();
    assert_eq!(out.ids.len(), 4);
}

#[test]
fn generator_options_are_checked_by_the_library() {
    let Some(ctx) = common::gpu() else { return };
    let bytes = tiny::llama(10).build();
    let model = || Llama::from_gguf(&Gguf::parse(&bytes, "tiny.gguf").unwrap(), &mut |_, _| {}).unwrap();
    let e = Generator::new(&ctx, model(), 0, Sampling::default()).map(|_| ()).unwrap_err().to_string();
    contains_all(&e, &["the context is 0", "at least 1"]);
    let e = Generator::new(&ctx, model(), 8, Sampling { top_k: 0, top_p: 0.0 }).map(|_| ()).unwrap_err().to_string();
    contains_all(&e, &["top-p is 0", "(0, 1]"]);
    let mut gen = Generator::new(&ctx, model(), 8, Sampling::default()).unwrap();
    let o = GenerateOptions { temperature: f32::NAN, ..Default::default() };
    let e = common::block(gen.generate(&[1], &o, |_| true)).unwrap_err().to_string();
    contains_all(&e, &["temperature is NaN"]);
}

#[path = "../fuzz/fuzz_targets/bodies.rs"]
mod fuzz_bodies;

/// Every committed fuzz seed and every input that once crashed a target (fuzz/regressions/
/// <target>/) goes through the target's code again: a crash fixed once stays fixed.
/// A fuzz target's name and body.
type Target = (&'static str, fn(&[u8]));

#[test]
fn fuzz_inputs_replay() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let targets: [Target; 3] = [
        ("gguf", fuzz_bodies::gguf),
        ("safetensors_config", fuzz_bodies::safetensors_config),
        ("tokenizer", fuzz_bodies::tokenizer),
    ];
    let mut replayed = 0;
    for (name, run) in targets {
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else { continue };
            for e in entries {
                let path = e.unwrap().path();
                run(&std::fs::read(&path).unwrap());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 9, "the seeds are missing: only {replayed} inputs under fuzz/seeds and fuzz/regressions");
}

fn tiny_model(seed: u64) -> Llama {
    let bytes = tiny::llama(seed).build();
    Llama::from_gguf(&Gguf::parse(&bytes, "tiny.gguf").unwrap(), &mut |_, _| {}).unwrap()
}

/// Long runs allocate nothing per step: 1,000 replays of a plan create no GPU buffer, and a
/// generation of 2,000 tokens creates exactly as many as one of 10 (the prompt's executor),
/// with the logits' staging buffer made once.
#[test]
fn long_runs_keep_the_gpu_buffer_count_constant() {
    let Some(ctx) = common::gpu() else { return };
    let mut g = webformer::Graph::new();
    let x = g.input("x", &[37], webformer::DType::F32).unwrap();
    let w = g.weight("w", &[37], vec![0.5f32; 37]).unwrap();
    let y = g.mul(x, w).unwrap();
    g.output(y).unwrap();
    let mut exe = webformer::GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input("x", &[2.0f32; 37]).unwrap();
    exe.run().unwrap();
    common::block(exe.read(y)).unwrap();
    let before = ctx.buffers_created();
    for _ in 0..1000 {
        exe.run().unwrap();
    }
    assert_eq!(common::block(exe.read(y)).unwrap(), webformer::HostData::F32(vec![1.0; 37]));
    assert_eq!(ctx.buffers_created(), before, "1,000 replays created GPU buffers");

    let mut gen = Generator::new(&ctx, tiny_model(11), 2010, Sampling::default()).unwrap();
    let run = |gen: &mut Generator, n: usize| {
        let o = GenerateOptions { max_tokens: n, ..Default::default() };
        let before = ctx.buffers_created();
        let out = common::block(gen.generate(&[1, 2, 3], &o, |_| true)).unwrap();
        assert_eq!(out.ids.len(), n);
        ctx.buffers_created() - before
    };
    run(&mut gen, 10); // first use: the decode plan's staging buffers
    let short = run(&mut gen, 10);
    let long = run(&mut gen, 2000);
    assert_eq!(long, short, "2,000 decode steps created {long} buffers, 10 created {short}");
}

/// Two models on one device in one process, used alternately, give what each gives alone.
/// The types that hold GPU state are `Send` (a model can move to another thread); a
/// `Generator` is driven through `&mut self`, so one thread uses it at a time (compile-time).
#[test]
fn two_models_on_one_device() {
    fn send<T: Send>() {}
    send::<webformer::Context>();
    send::<webformer::GpuExecutor>();
    send::<Generator>();
    send::<Llama>();
    let Some(ctx) = common::gpu() else { return };
    let o = GenerateOptions { max_tokens: 12, temperature: 0.8, seed: 5, stop_at_eos: true };
    let alone = |seed: u64| {
        let mut gen = Generator::new(&ctx, tiny_model(seed), 32, Sampling::default()).unwrap();
        common::block(gen.generate(&[4, 5], &o, |_| true)).unwrap().ids
    };
    let (a_alone, b_alone) = (alone(12), alone(13));
    assert_ne!(a_alone, b_alone, "two different models should differ");
    let mut a = Generator::new(&ctx, tiny_model(12), 32, Sampling::default()).unwrap();
    let mut b = Generator::new(&ctx, tiny_model(13), 32, Sampling::default()).unwrap();
    for _ in 0..2 {
        assert_eq!(common::block(a.generate(&[4, 5], &o, |_| true)).unwrap().ids, a_alone);
        assert_eq!(common::block(b.generate(&[4, 5], &o, |_| true)).unwrap().ids, b_alone);
    }
    // And from another thread: the second model moves there and runs while the first runs here.
    let handle = std::thread::spawn(move || common::block(b.generate(&[4, 5], &o, |_| true)).unwrap().ids);
    assert_eq!(common::block(a.generate(&[4, 5], &o, |_| true)).unwrap().ids, a_alone);
    assert_eq!(handle.join().unwrap(), b_alone);
}

/// A lost device (destroyed here, as a driver reset would) turns every later call into
/// `Error::DeviceLost` naming the adapter, and a new context in the same process works.
#[test]
fn a_lost_device_is_an_error_and_a_new_context_works() {
    let Some(ctx) = common::gpu() else { return };
    let mut g = webformer::Graph::new();
    let x = g.input("x", &[5], webformer::DType::F32).unwrap();
    let y = g.gelu(x).unwrap();
    g.output(y).unwrap();
    let mut exe = webformer::GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input("x", &[1.0f32; 5]).unwrap();
    exe.run().unwrap();
    let want = common::block(exe.read(y)).unwrap();
    ctx.destroy();
    let e = exe.run().expect_err("a run on a destroyed device fails");
    assert!(matches!(e, Error::DeviceLost { .. }), "{e}");
    contains_all(&e.to_string(), &["was lost", "running the graph", "open a new Context"]);
    let e = common::block(exe.read(y)).expect_err("a read on a destroyed device fails").to_string();
    contains_all(&e, &["was lost", "reading a result"]);
    let e = webformer::GpuExecutor::new(&ctx, &g).err().expect("a new executor on it fails").to_string();
    contains_all(&e, &["was lost"]);

    let fresh = common::block(webformer::Context::new()).expect("a new context after the loss");
    let mut exe = webformer::GpuExecutor::new(&fresh, &g).unwrap();
    exe.set_input("x", &[1.0f32; 5]).unwrap();
    exe.run().unwrap();
    assert_eq!(common::block(exe.read(y)).unwrap(), want);
}

/// A tensor larger than the device's storage-binding limit is refused with its name, its size
/// and the limit, before anything is allocated on the GPU (WebGPU's baseline: 128 MiB).
#[test]
fn a_tensor_over_the_binding_limit_is_refused_by_name() {
    let Ok(mut options) = webformer::ContextOptions::from_env() else { return };
    options.limits = webformer::LimitsChoice::WebGpuDefault;
    let Ok(ctx) = common::block(webformer::Context::with_options(&options)) else {
        assert_ne!(std::env::var("WEBFORMER_REQUIRE_GPU").as_deref(), Ok("1"), "no GPU context");
        return;
    };
    let mut g = webformer::Graph::new();
    let n = (128 << 20) / 4 + 4; // one vec4 over 128 MiB of f32
    let x = g.input("token_embd.weight", &[n], webformer::DType::F32).unwrap();
    let y = g.gelu(x).unwrap();
    g.output(y).unwrap();
    let e = webformer::GpuExecutor::new(&ctx, &g).err().expect("refused").to_string();
    contains_all(&e, &["token_embd.weight", "134217744", "134217728", "max_storage_buffer_binding_size"]);
}
