//! The FNet encoder against Hugging Face transformers' `FNetModel` on the tiny random
//! checkpoints of tests/fixtures/fnet (made by scripts/make_fnet_fixtures.py), and the tanh
//! activation its pooler uses.
//!
//! Tolerance: 1e-4 of the largest output magnitude, for the last hidden state and the pooled
//! vector alike. Both sides compute in f32 (torch's FFT is pocketfft in f32); our mixing errs
//! by ~1e-6 relative to its largest output at these sizes (tests/fft.rs bounds it), and each
//! post-LN block renormalises, so differences stay near 1e-6 of the output scale. Measured
//! errors are printed.

mod common;

use std::path::PathBuf;

use common::{assert_close, block, gpu, random, seed};
use webformer::model::files::{self, ModelKind};
use webformer::{cpu, Activation, DType, GpuExecutor, Graph, HostData};

const FIXTURES: &[&str] = &["h24_l2_t7", "h36_l3_t13", "h22_l2_t12", "mlm_h20_l2_t11"];
const TOL: f32 = 1e-4;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fnet").join(name)
}

struct Expected {
    ids: Vec<u32>,
    types: Vec<u32>,
    hidden: Vec<f32>,
    pooled: Vec<f32>,
    /// FNetForMaskedLM fixtures: [T × vocab].
    logits: Option<Vec<f32>>,
}

fn expected(name: &str) -> Expected {
    let bytes = std::fs::read(dir(name).join("expected.json")).expect("expected.json");
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let u32s = |k: &str| v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let f32s = |x: &serde_json::Value| x.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let hidden = v["last_hidden_state"].as_array().unwrap().iter().flat_map(&f32s).collect::<Vec<f32>>();
    let logits = v.get("logits").map(|l| l.as_array().unwrap().iter().flat_map(&f32s).collect());
    Expected { ids: u32s("ids"), types: u32s("token_type_ids"), hidden, pooled: f32s(&v["pooler_output"]), logits }
}

/// max |got - want| / max |want|; non-finite values count as infinitely wrong.
fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    if got.iter().any(|v| !v.is_finite()) {
        return f32::INFINITY;
    }
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    got.iter().zip(want).fold(0.0f32, |m, (g, w)| m.max((g - w).abs())) / scale
}

#[test]
fn fnet_matches_hugging_face() {
    let Some(ctx) = gpu() else { return };
    for name in FIXTURES {
        assert_eq!(files::detect(&dir(name)).unwrap(), ModelKind::FNetFolder);
        let fnet = files::load_fnet(&dir(name)).expect("load");
        let e = expected(name);
        let out = block(fnet.forward(&ctx, &e.ids, &e.types)).expect("forward");
        let (eh, ep) = (rel_err(&out.hidden, &e.hidden), rel_err(&out.pooled, &e.pooled));
        eprintln!("{name}: last hidden state {eh:.2e}, pooler {ep:.2e} (relative to the largest output)");
        assert!(eh <= TOL, "{name}: last hidden state differs from transformers by {eh:e} > {TOL:e}");
        assert!(ep <= TOL, "{name}: pooler output differs from transformers by {ep:e} > {TOL:e}");
        assert_eq!(
            fnet.mlm,
            e.logits.is_some(),
            "{name}: the masked-LM head is found exactly when the fixture has one"
        );
        if let (Some(got), Some(want)) = (&out.logits, &e.logits) {
            let el = rel_err(got, want);
            eprintln!("{name}: masked-LM logits {el:.2e}");
            assert!(el <= TOL, "{name}: logits differ from transformers by {el:e} > {TOL:e}");
        }
    }
}

#[test]
fn fnet_graph_matches_cpu_reference_node_by_node() {
    let Some(ctx) = gpu() else { return };
    let name = FIXTURES[1];
    let fnet = files::load_fnet(&dir(name)).unwrap();
    let e = expected(name);
    let fg = fnet.graph(e.ids.len()).unwrap();
    let t = e.ids.len() as u32;
    let inputs = [
        ("ids", HostData::U32(e.ids.clone())),
        ("positions", HostData::U32((0..t).collect())),
        ("types", HostData::U32(e.types.clone())),
    ];
    let mut exe = GpuExecutor::new(&ctx, &fg.graph).unwrap();
    exe.poison_outputs();
    let mut cpu_exe = webformer::CpuExecutor::new(&fg.graph);
    for (n, d) in &inputs {
        exe.set_input_host(n, d).unwrap();
        cpu_exe.set_input(n, d).unwrap();
    }
    exe.run().unwrap();
    cpu_exe.run().unwrap();
    let got = block(exe.read(fg.hidden)).unwrap().to_f32();
    let want = cpu_exe.value(fg.hidden).unwrap().to_f32();
    let err = rel_err(&got, &want);
    eprintln!("{name}: GPU vs CPU reference graph {err:.2e}");
    assert!(err <= TOL, "{name}: GPU vs CPU graph {err:e}");
}

#[test]
fn fnet_rejects_what_it_cannot_run() {
    let fnet = files::load_fnet(&dir(FIXTURES[0])).unwrap();
    let too_long = fnet.config.max_position_embeddings + 1;
    let e = fnet.graph(too_long).err().expect("too long").to_string();
    assert!(e.contains("tokens"), "{e}");
    let Some(ctx) = gpu() else { return };
    let e = block(fnet.forward(&ctx, &[0, 999], &[0, 0])).expect_err("bad id").to_string();
    assert!(e.contains("999") && e.contains("vocabulary"), "{e}");
}

/// tanh, new for the pooler: elementwise and as a matmul epilogue, against f64. Vulkan's tanh
/// may be built from exp (relative error a few ulp, ~1e-6 near 0 after cancellation), so
/// rtol 1e-5, atol 1e-6 as for the other activations; extremes stay finite (the argument is
/// clamped at ±10, where tanh is 1 in f32).
#[test]
fn tanh_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("tanh_matches_reference");
    let mut a = random(s, 1031, -6.0, 6.0);
    a.extend([-1e4f32, -88.8, -20.0, 0.0, 20.0, 88.8, 1e4]);
    let mut g = Graph::new();
    let x = g.input("a", &[a.len()], DType::F32).unwrap();
    let y = g.activation(x, Activation::Tanh).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("a", &a).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    assert_close("tanh", &got, &cpu::elementwise::activation(&a, Activation::Tanh), 1e-5, 1e-6);

    // As the pooler uses it: linear + tanh fused.
    let (m, k, n) = (3, 37, 29);
    let xs = random(s + 1, m * k, -1.0, 1.0);
    let ws = random(s + 2, n * k, -0.5, 0.5);
    let bs = random(s + 3, n, -0.5, 0.5);
    let mut g = Graph::new();
    let x = g.input("x", &[m, k], DType::F32).unwrap();
    let w = g.weight("w", &[n, k], ws.clone()).unwrap();
    let b = g.weight("b", &[n], bs.clone()).unwrap();
    let y = g.linear(x, w, Some(b), Some(Activation::Tanh)).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("x", &xs).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    let lin = cpu::matmul::matmul(&xs, &ws, &[m, k], &[n, k], &[m, n], true);
    let want = cpu::elementwise::activation(&cpu::elementwise::add(&lin, &bs), Activation::Tanh);
    // k = 37 products summed in f32 (error ~ sqrt(k)·eps·Σ|x·w| ~ 1e-6 absolute).
    assert_close("linear + tanh", &got, &want, 1e-5, 1e-5);
}

/// `webformer forward --model DIR --ids ...` prints the last hidden state of an FNet folder
/// (token types 0, as the first fixture was made) and the logits of one with the MLM head.
#[test]
fn cli_forward_runs_an_fnet_folder() {
    if gpu().is_none() {
        return;
    }
    for (name, key) in [(FIXTURES[0], None), (FIXTURES[3], Some("logits"))] {
        let e = expected(name);
        let ids: Vec<String> = e.ids.iter().map(u32::to_string).collect();
        let model = dir(name);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_webformer"))
            .args(["forward", "--model", model.to_str().unwrap(), "--ids", &ids.join(",")])
            .output()
            .expect("the webformer binary runs");
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
        let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let want = match key {
            None => e.hidden,
            // The MLM fixture has random token types; its logits are compared in
            // fnet_matches_hugging_face, here only their shape.
            Some(_) => {
                let vocab = files::load_fnet(&model).unwrap().config.vocab_size;
                assert_eq!(v["shape"], serde_json::json!([e.ids.len(), vocab]));
                continue;
            }
        };
        assert_eq!(v["shape"], serde_json::json!([e.ids.len(), want.len() / e.ids.len()]));
        let err = rel_err(&data, &want);
        assert!(err <= TOL, "{name}: CLI output differs from transformers by {err:e}");
    }
}

/// A word-level tokenizer.json for a fixture's vocabulary: token i is `t{i}`, except that
/// `cls` and `sep` are the ids of "[CLS]" and "[SEP]", which a template post-processor puts
/// around every text (as FNet's own tokenizer does).
fn word_tokenizer(vocab: usize, cls: u32, sep: u32) -> serde_json::Value {
    let name = |i: u32| match i {
        _ if i == cls => "[CLS]".to_string(),
        _ if i == sep => "[SEP]".to_string(),
        _ => format!("t{i}"),
    };
    let words: serde_json::Map<String, serde_json::Value> =
        (0..vocab as u32).map(|i| (name(i), serde_json::json!(i))).collect();
    let special = |t: &str, id: u32| serde_json::json!({"id": t, "ids": [id], "tokens": [t]});
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "decoder": null,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"[CLS]": special("[CLS]", cls), "[SEP]": special("[SEP]", sep)}
        },
        "model": {"type": "WordLevel", "vocab": words, "unk_token": name(0)}
    })
}

/// `webformer embed` on an FNet folder with a tokenizer.json: the text is tokenized to the
/// fixture's ids ([CLS] and [SEP] from the post-processor), and the embedding is the mean of
/// transformers' last hidden state over the tokens, L2-normalised (computed here in f64).
///
/// Tolerance: the hidden state matches within TOL·max|h| per element (fnet_matches_hugging_face);
/// the mean keeps that bound, and normalising by ‖mean‖ turns an error δ into at most 2δ/‖mean‖
/// (one δ/‖mean‖ from the numerator, one from the norm), so 2·TOL·max|h|/‖mean‖.
#[test]
fn cli_embed_runs_an_fnet_folder_with_a_tokenizer() {
    if gpu().is_none() {
        return;
    }
    let name = FIXTURES[0]; // token types 0, as embed passes
    let e = expected(name);
    let (t, vocab) = (e.ids.len(), files::load_fnet(&dir(name)).unwrap().config.vocab_size);
    let folder = std::env::temp_dir().join(format!("webformer-fnet-embed-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir(name).join(f), folder.join(f)).unwrap();
    }
    let (cls, sep) = (e.ids[0], e.ids[t - 1]);
    std::fs::write(folder.join("tokenizer.json"), word_tokenizer(vocab, cls, sep).to_string()).unwrap();
    let text: Vec<String> = e.ids[1..t - 1].iter().map(|i| format!("t{i}")).collect();

    let o = std::process::Command::new(env!("CARGO_BIN_EXE_webformer"))
        .args(["embed", "--model", folder.to_str().unwrap(), &text.join(" "), &text[..2].join(" ")])
        .output()
        .expect("the webformer binary runs");
    let _ = std::fs::remove_dir_all(&folder);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Vec<Vec<f32>> = serde_json::from_slice(&o.stdout).expect("a JSON array of embeddings on stdout");
    assert_eq!(v.len(), 2, "one embedding per text");

    let d = e.hidden.len() / t;
    let mean: Vec<f64> = (0..d).map(|j| (0..t).map(|i| e.hidden[i * d + j] as f64).sum::<f64>() / t as f64).collect();
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
    let want: Vec<f32> = mean.iter().map(|x| (x / norm) as f32).collect();
    let max_h = e.hidden.iter().fold(0.0f32, |m, x| m.max(x.abs())) as f64;
    let tol = (2.0 * TOL as f64 * max_h / norm) as f32;
    assert_eq!(v[0].len(), d);
    let err = v[0].iter().zip(&want).fold(0.0f32, |m, (g, w)| m.max((g - w).abs()));
    eprintln!("{name}: embed vs transformers' normalised mean {err:.2e} (bound {tol:.2e})");
    assert!(err <= tol, "{name}: embedding differs from transformers' normalised mean by {err:e} > {tol:e}");
    let unit = v[1].iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    assert!((unit - 1.0).abs() < 1e-5, "the second embedding has norm {unit}, not 1");
    assert!(v[0] != v[1], "different texts, different embeddings");
}
