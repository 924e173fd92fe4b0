//! The `webformer` binary's model commands: bad inputs give one clear line on stderr and a
//! non-zero exit; good ones print what the README promises (JSON shapes, the greedy text).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::models;

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
    // forward: logits [T, vocab].
    let o = webformer(&["forward", "--model", gguf, "--ids", "504,3575"]);
    assert!(o.ok, "{:?}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["shape"], serde_json::json!([2, 49152]));
    assert_eq!(v["data"].as_array().unwrap().len(), 2 * 49152);
    // embed: one normalised 384-vector per text; forward on the folder: [T, 384].
    let dir = s(&paths.minilm_dir);
    let o = webformer(&["embed", "--model", dir, "A man is eating food.", "hello"]);
    assert!(o.ok, "{:?}", o.stderr);
    let v: Vec<Vec<f32>> = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!((v.len(), v[0].len()), (2, 384));
    let o = webformer(&["forward", "--model", dir, "--ids", "101,7592,102"]);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["shape"], serde_json::json!([3, 384]));
}
