//! The `webformer` binary's model commands: bad inputs give one clear line on stderr and a
//! non-zero exit; good ones print what the README promises: the greedy text, and `forward` /
//! `embed` values that match the Hugging Face fixtures (tests/fixtures/{smollm2,minilm}.json)
//! within the tolerances of tests/models.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_close, models};

// The tolerances of tests/models.rs (derived there from measurements): the CLI runs the same
// code, so its values must meet them too.
const LOGIT_RTOL: f32 = 2e-5;
const EMBED_ATOL: f32 = 2e-6;
const HIDDEN_RTOL: f32 = 0.0;
const HIDDEN_ATOL: f32 = 2.5e-5;

struct Out {
    ok: bool,
    stdout: String,
    /// stderr without the graphics driver's own warnings.
    stderr: Vec<String>,
}

fn webformer(args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_webformer")).args(args).output().expect("the webformer binary runs");
    let stderr = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .map(str::to_string)
        .collect();
    Out { ok: o.status.success(), stdout: String::from_utf8_lossy(&o.stdout).into_owned(), stderr }
}

/// Runs a command that must fail with exactly one stderr line, an `error:` containing `want`.
fn fails(args: &[&str], want: &[&str]) {
    let o = webformer(args);
    assert!(!o.ok, "{args:?} succeeded");
    assert_eq!(o.stderr.len(), 1, "{args:?}: one line expected, got {:?}", o.stderr);
    let line = &o.stderr[0];
    assert!(line.starts_with("error: "), "{line}");
    for w in want {
        assert!(line.contains(w), "{args:?}: {line:?} should mention {w:?}");
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webformer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A minimal valid GGUF (v3) with one string of metadata: general.architecture = `arch`.
fn gguf_with_arch(arch: &str) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata entries
    let key = "general.architecture";
    b.extend((key.len() as u64).to_le_bytes());
    b.extend(key.as_bytes());
    b.extend(8u32.to_le_bytes()); // string
    b.extend((arch.len() as u64).to_le_bytes());
    b.extend(arch.as_bytes());
    b
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn bad_models_are_one_line_errors() {
    fails(
        &["generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"],
        &["/nonexistent/model.gguf", "no such file"],
    );
    let text = temp("notes.txt");
    std::fs::write(&text, "just some text, not a model").unwrap();
    fails(
        &["generate", "--model", s(&text), "--prompt", "hi"],
        &["notes.txt", "neither a GGUF file nor a model folder"],
    );
    fails(&["forward", "--model", s(&text), "--ids", "1,2"], &["notes.txt", "neither a GGUF"]);
    let gpt2 = temp("gpt2.gguf");
    std::fs::write(&gpt2, gguf_with_arch("gpt2")).unwrap();
    fails(&["generate", "--model", s(&gpt2), "--prompt", "hi"], &["gpt2.gguf", "architecture 'gpt2'"]);
    let t5 = temp("t5");
    std::fs::create_dir_all(&t5).unwrap();
    std::fs::write(t5.join("config.json"), r#"{"model_type": "t5"}"#).unwrap();
    fails(&["embed", "--model", s(&t5), "hello"], &["config.json", "model_type 't5'", "unknown architecture"]);
    fails(&["generate", "--model", s(&t5), "--prompt", "hi"], &["model_type 't5'"]);
    let truncated = temp("truncated.gguf");
    std::fs::write(&truncated, &gguf_with_arch("llama")[..30]).unwrap();
    fails(&["generate", "--model", s(&truncated), "--prompt", "hi"], &["truncated.gguf"]);
    let llama_no_tensors = temp("empty-llama.gguf");
    std::fs::write(&llama_no_tensors, gguf_with_arch("llama")).unwrap();
    fails(&["generate", "--model", s(&llama_no_tensors), "--prompt", "hi"], &["empty-llama.gguf"]);
    fails(&["generate", "--model", s(&llama_no_tensors), "--prompt", "  "], &["prompt is empty"]);
}

#[test]
fn real_models_from_the_command_line() {
    let Some(paths) = models() else { return };
    let gguf = s(&paths.smollm2_gguf);
    // A prompt longer than the context.
    let long = "word ".repeat(40);
    fails(&["generate", "--model", gguf, "--context", "16", "--prompt", &long], &["longer than the context of 16"]);
    // Greedy generation as JSON: transformers' continuation (tests/fixtures/smollm2.json).
    let o = webformer(&[
        "generate",
        "--model",
        gguf,
        "--prompt",
        "The capital of France is",
        "--max-tokens",
        "6",
        "--json",
    ]);
    assert!(o.ok, "{:?}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["prompt_ids"], serde_json::json!([504, 3575, 282, 4649, 314]));
    assert_eq!(v["ids"], serde_json::json!([7042, 30, 198, 198, 504, 2988]));
    assert_eq!(v["text"], " Paris.\n\nThe answer");
    assert!(o.stderr.iter().any(|l| l.contains("tokens/s")), "stats on stderr: {:?}", o.stderr);
    // Streaming prints the same text.
    let o = webformer(&["generate", "--model", gguf, "--prompt", "The capital of France is", "--max-tokens", "6"]);
    assert!(o.ok && o.stdout == " Paris.\n\nThe answer\n", "{:?} {:?}", o.stdout, o.stderr);
    // forward: logits [T, vocab], the last row against transformers' (tests/fixtures/smollm2.json).
    let fx = fixture("smollm2.json");
    let p0 = &fx["prompts"][0];
    let ids: Vec<String> = p0["ids"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let o = webformer(&["forward", "--model", gguf, "--ids", &ids.join(",")]);
    assert!(o.ok, "{:?}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["shape"], serde_json::json!([ids.len(), 49152]));
    let data = f32s(&v["data"]);
    assert_eq!(data.len(), ids.len() * 49152);
    let last = &data[(ids.len() - 1) * 49152..];
    let got: Vec<f32> = p0["top_ids"].as_array().unwrap().iter().map(|i| last[i.as_u64().unwrap() as usize]).collect();
    assert_close("forward: top-20 logits of the last position", &got, &f32s(&p0["top_logits"]), LOGIT_RTOL, 0.0);
    // embed: one normalised 384-vector per text, sentence-transformers' (tests/fixtures/minilm.json).
    let fx = fixture("minilm.json");
    let sentences: Vec<&serde_json::Value> = fx["sentences"].as_array().unwrap().iter().take(4).collect();
    let texts: Vec<&str> = sentences.iter().map(|s| s["text"].as_str().unwrap()).collect();
    let dir = s(&paths.minilm_dir);
    let mut args = vec!["embed", "--model", dir];
    args.extend(&texts);
    let o = webformer(&args);
    assert!(o.ok, "{:?}", o.stderr);
    let v: Vec<Vec<f32>> = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v.len(), texts.len());
    for (got, want) in v.iter().zip(&sentences) {
        assert_close(&format!("embed {:?}", want["text"]), got, &f32s(&want["embedding"]), 0.0, EMBED_ATOL);
    }
    // forward on the folder: the last hidden state [T, 384], its first rows against transformers'.
    let ids: Vec<String> = fx["debug_ids"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let o = webformer(&["forward", "--model", dir, "--ids", &ids.join(",")]);
    assert!(o.ok, "{:?}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["shape"], serde_json::json!([ids.len(), 384]));
    let data = f32s(&v["data"]);
    for (r, row) in fx["last_hidden_state_first_rows"].as_array().unwrap().iter().enumerate() {
        let want = f32s(row);
        assert_close(
            &format!("forward: hidden state row {r}"),
            &data[r * 384..][..want.len()],
            &want,
            HIDDEN_RTOL,
            HIDDEN_ATOL,
        );
    }
}

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// `bench generate --synthetic` builds SmolLM2-135M's shapes in memory (no file) and reports
/// the figures the benchmark suite reads, the dispatches of one decode step among them; an
/// unknown name is one clear line.
#[test]
fn bench_generate_runs_a_synthetic_model() {
    if common::gpu().is_none() {
        return;
    }
    let args = ["bench", "generate", "--synthetic", "smollm2-135m", "--prompt-tokens", "3", "--decode-tokens", "2"];
    let o = webformer(&[&args[..], &["--repeats", "1", "--json"]].concat());
    assert!(o.ok, "{:?}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("one JSON object");
    assert_eq!(v["model"], "synthetic smollm2-135m");
    assert_eq!(v["prompt_tokens"], 3);
    // 30 layers of SmolLM2 at 8 dispatches each (norm, qkv, rope_kv, one-pass decode attention
    // on a CPU adapter, o + residual, norm, gate/up SwiGLU pair, down + residual), plus
    // embedding, final norm, head and sampling: the fused graph's budget of 250 a step.
    let dispatches = v["dispatches_per_token"].as_u64().unwrap();
    assert!((30 * 8..=250).contains(&dispatches), "{dispatches} dispatches per token");
    assert!(v["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    // 92 MiB: a tied Q8_0 embedding and Q4_1 projections, as the real file.
    let mib = v["weight_bytes"].as_f64().unwrap() / (1 << 20) as f64;
    assert!((mib - 92.1).abs() < 0.1, "{mib} MiB of weights");
    fails(&["bench", "generate", "--synthetic", "gpt-9"], &["no synthetic model named 'gpt-9'", "smollm2-135m"]);
}

/// `bench --suite NAME --quick --json FILE` writes the shared schema (the rows that
/// scripts/bench_torch.py also prints) and a table; a bad suite name is one clear line.
#[test]
fn bench_suite_writes_the_shared_schema() {
    if common::gpu().is_none() {
        return;
    }
    let path = temp("suite.json");
    let o = webformer(&["bench", "--suite", "fft", "--quick", "--repeats", "1", "--json", path.to_str().unwrap()]);
    assert!(o.ok, "{:?}", o.stderr);
    assert!(o.stdout.contains("fourier_mix"), "{}", o.stdout);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["schema"], "webformer-bench/1");
    let rows = v["rows"].as_array().unwrap();
    // Mixing on the FFT path and as DFT matrices, and the attention it replaces.
    assert_eq!(rows.len(), 3, "{rows:?}");
    let variants: Vec<&str> = rows.iter().map(|r| r["variant"].as_str().unwrap_or("")).collect();
    assert_eq!(variants, ["real-input fft", "dft-as-matmul", "fused"], "{rows:?}");
    for r in rows {
        for key in ["bench", "case", "dtype", "variant"] {
            assert!(r[key].is_string(), "{key} in {r}");
        }
        assert!(r["ms"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(rows[0]["case"], "L512 d768");
    fails(&["bench", "--suite", "everything"], &["--suite=everything", "kernels, attention, lsh, fft, decode, all"]);
    fails(&["bench"], &["--suite"]);
}
