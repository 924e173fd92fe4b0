//! The `webformer` binary under hostile conditions: no XDG_RUNTIME_DIR, stdout closed early,
//! options out of range, sizes too large to allocate, corrupt weights and NaN at run time.
//! Each ends with one clear stderr line (or, for a closed pipe, quietly) and never a panic.

mod common;
mod tiny;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tiny::{Data, Meta};

/// 128 + SIGPIPE: the status of a program whose output pipe was closed.
const OUTPUT_CLOSED: i32 = 141;

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn webformer(args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_webformer"))
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("the webformer binary runs");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A failure with exactly one stderr line, `error: ...` containing every `want`.
fn fails(args: &[&str], want: &[&str]) {
    let o = webformer(args);
    assert_eq!(o.code, Some(1), "{args:?}: status {:?}, stderr {}", o.code, o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.starts_with("adapter: ")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line expected, got {lines:?}");
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    for w in want {
        assert!(lines[0].contains(w), "{args:?}: {:?} should mention {w:?}", lines[0]);
    }
}

fn no_panic(what: &str, stderr: &str) {
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{what}: {stderr}");
    assert!(!stderr.contains("memory allocation"), "{what}: {stderr}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn no_xdg_runtime_dir_line_on_stderr() {
    let dir = tiny::temp_dir("xdg");
    let model = write(&dir, "tiny.gguf", &tiny::llama(1).build());
    for args in [vec!["info"], vec!["forward", "--model", s(&model), "--ids", "1,2,3"]] {
        let o = webformer(&args);
        assert!(!o.stderr.contains("XDG_RUNTIME_DIR"), "{args:?}: {}", o.stderr);
        if common::gpu().is_some() {
            assert_eq!(o.code, Some(0), "{args:?}: {}", o.stderr);
        }
    }
}

/// Runs webformer with stdout into a pipe whose reader takes `keep` bytes and closes it.
/// Returns the exit status, the stderr text and the time it took after the pipe closed.
fn closed_early(args: &[&str], keep: usize) -> (Option<i32>, String, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webformer"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the webformer binary runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; keep];
    stdout.read_exact(&mut got).expect("the first bytes arrive");
    drop(stdout);
    let closed = Instant::now();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    (status.code(), stderr, closed.elapsed())
}

#[test]
fn a_closed_stdout_ends_forward_and_generate_quietly() {
    if common::gpu().is_none() {
        return;
    }
    let dir = tiny::temp_dir("pipe");
    let mut spec = tiny::llama(2);
    // Room for a million positions: generating them all would take hours, so a run that ends
    // within the timeout below stopped because its reader left.
    spec.set("llama.context_length", Meta::U32(1 << 20));
    let model = write(&dir, "tiny.gguf", &spec.build());
    // forward: [200, 64] logits as JSON are well over a pipe's 64 KiB buffer.
    let ids = (0..200).map(|i| (i % 64).to_string()).collect::<Vec<_>>().join(",");
    let (code, stderr, _) = closed_early(&["forward", "--model", s(&model), "--ids", &ids], 100);
    no_panic("forward", &stderr);
    assert_eq!(code, Some(OUTPUT_CLOSED), "forward: {stderr}");
    assert!(!stderr.contains("error"), "forward ends quietly: {stderr}");
    let args =
        ["generate", "--model", s(&model), "--prompt", "hello", "--max-tokens", "1000000", "--context", "1048576"];
    let (code, stderr, after) = closed_early(&args, 1);
    no_panic("generate", &stderr);
    assert_eq!(code, Some(OUTPUT_CLOSED), "generate: {stderr}");
    assert!(!stderr.contains("error"), "generate ends quietly: {stderr}");
    assert!(after < Duration::from_secs(120), "generation went on {after:?} after its reader left");
}

#[test]
fn options_out_of_range_are_refused_with_the_range() {
    fn g(extra: &[&'static str]) -> Vec<&'static str> {
        let mut a = vec!["generate", "--model", "/nonexistent.gguf", "--prompt", "hi"];
        a.extend(extra);
        a
    }
    fails(&g(&["--temperature", "-1"]), &["temperature is -1", "a finite number >= 0"]);
    fails(&g(&["--temperature", "NaN"]), &["temperature is NaN"]);
    fails(&g(&["--temperature", "inf"]), &["temperature is inf"]);
    fails(&g(&["--top-p", "0"]), &["top-p is 0", "(0, 1]"]);
    fails(&g(&["--top-p", "1.5"]), &["top-p is 1.5"]);
    fails(&g(&["--top-p", "NaN"]), &["top-p is NaN"]);
    fails(&g(&["--top-p", "-0.5"]), &["top-p is -0.5"]);
    fails(&g(&["--max-tokens", "0"]), &["--max-tokens is 0", "at least 1"]);
    fails(&g(&["--context", "0"]), &["--context is 0", "at least 1"]);
    let o = webformer(&g(&["--top-k", "-1"]));
    assert_eq!(o.code, Some(2), "clap refuses a negative --top-k: {}", o.stderr);
    no_panic("top-k", &o.stderr);
}

#[test]
fn sizes_too_large_to_allocate_are_refused_before_allocating() {
    fails(&["bench", "load", "--text-bytes", "99999999999999"], &["--text-bytes is 99999999999999", "1 to 1073741824"]);
    fails(&["bench", "load", "--repeats", "0"], &["--repeats is 0"]);
    fails(&["bench", "dispatch", "--nodes", "0"], &["--nodes is 0"]);
    fails(&["bench", "attention", "--heads", "12", "--kv-heads", "5"], &["--kv-heads is 5", "divisor of --heads (12)"]);
    fails(&["demo", "--tokens", "0"], &["--tokens is 0"]);
    if common::gpu().is_none() {
        return;
    }
    let huge = "4611686018427387904"; // 2^62
    fails(&["demo", "--tokens", huge, "--hidden", "96"], &["--tokens x --hidden", "max_storage_buffer_binding_size"]);
    fails(&["demo", "--hidden", "10000"], &["feed-forward weight", "max_storage_buffer_binding_size"]);
    fails(&["bench", "dispatch", "--elements", huge], &["--elements", "max_storage_buffer_binding_size"]);
    fails(&["bench", "gemm", "--sizes", "1000000"], &["--sizes matrix", "max_storage_buffer_binding_size"]);
    fails(&["bench", "attention", "--prefill", "100000000", "--decode", "8"], &["--prefill query"]);
    fails(&["bench", "attention", "--prefill", "8", "--decode", "1000000000"], &["--decode KV cache"]);
}

#[test]
fn corrupt_weights_and_nan_at_run_time_are_errors_not_nulls() {
    if common::gpu().is_none() {
        return;
    }
    let dir = tiny::temp_dir("nan");
    let mut spec = tiny::llama(3);
    let Data::F32(w) = spec.tensor_mut("blk.1.attn_norm.weight") else { unreachable!() };
    w[5] = f32::NAN;
    let model = write(&dir, "nan-weight.gguf", &spec.build());
    fails(&["forward", "--model", s(&model), "--ids", "1,2"], &["nan-weight.gguf", "'blk.1.attn_norm.weight' has NaN"]);
    fails(&["generate", "--model", s(&model), "--prompt", "hi"], &["'blk.1.attn_norm.weight' has NaN"]);
    let mut spec = tiny::llama(4);
    for t in ["blk.0.ffn_gate.weight", "blk.0.ffn_up.weight"] {
        let Data::F32(w) = spec.tensor_mut(t) else { unreachable!() };
        w.iter_mut().for_each(|x| *x *= 1e20);
    }
    let model = write(&dir, "overflow.gguf", &spec.build());
    let o = webformer(&["forward", "--model", s(&model), "--ids", "1,2"]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stdout.is_empty(), "no JSON (with nulls) is printed: {}", o.stdout);
    assert!(o.stderr.contains("non-finite") && o.stderr.contains("node #"), "{}", o.stderr);
    let o = webformer(&["generate", "--model", s(&model), "--prompt", "hello", "--max-tokens", "5"]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stdout.trim().is_empty(), "no tokens are printed: {:?}", o.stdout);
    assert!(o.stderr.contains("non-finite"), "{}", o.stderr);
}
