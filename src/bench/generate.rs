//! Text generation with a real model file (SmolLM2-135M by default): load time, GPU memory,
//! prefill tokens/s for a prompt of P tokens, decode tokens/s for N new tokens (batch 1,
//! greedy, end-of-sequence ignored so every run decodes N), and the GPU time per node kind of
//! one decode step. Wall clock, readbacks included (what a user waits for); medians of repeats
//! after a warm-up run that compiles every pipeline.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

use super::median;
use crate::error::Result;
use crate::exec::Profile;
use crate::gpu::Context;
use crate::model::files::load_llama;
use crate::model::{synthetic, GenerateOptions, Generator, Sampling};

/// What to measure.
pub struct Config {
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    pub repeats: usize,
    /// Also time every node of one prompt pass (GPU timestamps): a second prefill, per node.
    pub profile_prefill: bool,
}

/// Tokens of the prompt the decode runs start from.
const SHORT_PROMPT: usize = 8;

/// A deterministic prompt of `n` ids spread over the vocabulary (speed does not depend on
/// which tokens they are).
fn prompt(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

/// Where the model comes from.
pub enum Source<'a> {
    /// A GGUF file.
    File(&'a Path),
    /// A synthetic model of a real one's shapes and types ([`crate::model::synthetic`]),
    /// by name, with weights from a fixed seed.
    Synthetic(&'a str),
}

pub async fn run(ctx: &Context, source: &Source<'_>, c: &Config) -> Result<serde_json::Value> {
    let t0 = Instant::now();
    let (model, name) = match source {
        Source::File(path) => (load_llama(path, &mut |_, _, _| {})?.model, path.display().to_string()),
        Source::Synthetic(name) => (synthetic::llama(name, 1)?, format!("synthetic {name}")),
    };
    let host_s = t0.elapsed().as_secs_f64();
    let vocab = model.config.vocab;
    // Room for the prefill runs (the prompt and one token) and for the decode runs (a prompt
    // of SHORT_PROMPT, then decode_tokens, or the 4 of the warm-up).
    let context = (c.prompt_tokens + 1).max(SHORT_PROMPT + c.decode_tokens.max(4));
    let weights = model.weight_bytes();
    let mut gen = Generator::new(ctx, model, context, Sampling::default())?;
    gen.sync().await?;
    let load_s = t0.elapsed().as_secs_f64();

    let greedy = GenerateOptions { max_tokens: 1, temperature: 0.0, seed: 0, stop_at_eos: false };
    let long = prompt(c.prompt_tokens, vocab);
    gen.generate(&long, &greedy, |_| true).await?; // warm-up: pipelines of the prompt plan
    let (mut prefill, mut setup) = (Vec::new(), Vec::new());
    for _ in 0..c.repeats.max(1) {
        let s = gen.generate(&long, &greedy, |_| true).await?.stats;
        prefill.push(s.prefill_s);
        setup.push(s.prompt_setup_s);
    }

    let short = prompt(SHORT_PROMPT, vocab);
    let decode_opts = GenerateOptions { max_tokens: c.decode_tokens, ..greedy };
    gen.generate(&short, &GenerateOptions { max_tokens: 4, ..greedy }, |_| true).await?; // warm-up
    let mut decode = Vec::new();
    for _ in 0..c.repeats.max(1) {
        decode.push(gen.generate(&short, &decode_opts, |_| true).await?.stats.decode_tokens_per_s());
    }

    let timestamps = ctx.has(wgpu::Features::TIMESTAMP_QUERY);
    let profile = if timestamps { Some(gen.profile_decode(short.len()).await?) } else { None };
    let by_op = by_op(profile.as_ref());
    let prefill_profile = if timestamps && c.profile_prefill { Some(gen.profile_prefill(&long).await?) } else { None };
    let prefill_by_op = by_op_rows(prefill_profile.as_ref());
    let prefill_s = median(&mut prefill);
    Ok(json!({
        "model": name,
        "dispatches_per_token": gen.decode_dispatches(),
        "adapter": ctx.adapter().one_line(),
        "host_load_s": host_s,
        "load_s": load_s,
        "weight_bytes": weights,
        "gpu_bytes_weights_and_kv": gen.gpu_bytes(),
        "decode_scratch_bytes": gen.decode_scratch_bytes(),
        "context": context,
        "prompt_tokens": c.prompt_tokens,
        "prefill_s": prefill_s,
        "prefill_tokens_per_s": c.prompt_tokens as f64 / prefill_s,
        "prompt_plan_s": median(&mut setup),
        "decode_tokens": c.decode_tokens,
        "decode_tokens_per_s": median(&mut decode),
        "decode_step_gpu_us": profile.as_ref().map(|p| p.total_ns() / 1e3),
        "decode_step_nodes": profile.as_ref().map(|p| p.rows.len()),
        "decode_step_gpu_us_by_op": by_op,
        "prefill_gpu_us": prefill_profile.as_ref().map(|p| p.total_ns() / 1e3),
        "prefill_gpu_us_by_op": prefill_by_op,
        "repeats": c.repeats.max(1),
    }))
}

/// GPU time per op of a profile, matmuls by output shape (the LM head, projections and
/// feed-forward differ).
fn by_op(profile: Option<&Profile>) -> BTreeMap<String, f64> {
    let mut by_op: BTreeMap<String, f64> = BTreeMap::new();
    for r in profile.iter().flat_map(|p| &p.rows) {
        let key = if r.op == "matmul" { format!("matmul {:?}", r.shape) } else { r.op.clone() };
        *by_op.entry(key).or_default() += r.ns / 1e3;
    }
    by_op
}

/// `by_op` of a prompt pass, whose matmul shapes lead with the token count: by op name and
/// output width only.
fn by_op_rows(profile: Option<&Profile>) -> BTreeMap<String, f64> {
    let mut by_op: BTreeMap<String, f64> = BTreeMap::new();
    for r in profile.iter().flat_map(|p| &p.rows) {
        let key = match (r.op.as_str(), r.shape.last()) {
            ("matmul" | "linear_fused" | "linear_swiglu", Some(n)) => format!("{} [.., {n}]", r.op),
            _ => r.op.clone(),
        };
        *by_op.entry(key).or_default() += r.ns / 1e3;
    }
    by_op
}

/// A readable summary of `run`'s JSON.
pub fn table(v: &serde_json::Value) -> String {
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mib = |k: &str| f(k) / (1u64 << 20) as f64;
    let mut s =
        format!("model   {}\nadapter {}\n", v["model"].as_str().unwrap_or("?"), v["adapter"].as_str().unwrap_or("?"));
    s += &format!("load    {:.2} s ({:.2} s on the host), weights {:.1} MiB, GPU {:.1} MiB (weights + {}-position KV cache) + {:.1} KiB decode scratch\n", f("load_s"), f("host_load_s"), mib("weight_bytes"), mib("gpu_bytes_weights_and_kv"), v["context"], f("decode_scratch_bytes") / 1024.0);
    s += &format!(
        "prefill {} tokens: {:.3} s, {:.1} tokens/s (plan build {:.3} s, not included)\n",
        v["prompt_tokens"],
        f("prefill_s"),
        f("prefill_tokens_per_s"),
        f("prompt_plan_s")
    );
    s += &format!(
        "decode  {} tokens: {:.2} tokens/s ({} dispatches per token)\n",
        v["decode_tokens"],
        f("decode_tokens_per_s"),
        v["dispatches_per_token"]
    );
    if let Some(ops) = v["decode_step_gpu_us_by_op"].as_object().filter(|o| !o.is_empty()) {
        s += &format!(
            "one decode step on the GPU: {:.1} us over {} nodes\n",
            f("decode_step_gpu_us"),
            v["decode_step_nodes"]
        );
        s += &op_rows(ops);
    }
    if let Some(ops) = v["prefill_gpu_us_by_op"].as_object().filter(|o| !o.is_empty()) {
        s += &format!("the prompt pass on the GPU, node by node: {:.1} us\n", f("prefill_gpu_us"));
        s += &op_rows(ops);
    }
    s
}

/// Per-op GPU times, largest first.
fn op_rows(ops: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut rows: Vec<(&String, f64)> = ops.iter().map(|(k, v)| (k, v.as_f64().unwrap_or(0.0))).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows.iter().map(|(op, us)| format!("  {op:<24} {us:>12.1} us\n")).collect()
}
