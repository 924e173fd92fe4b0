//! The CPU backend: the models' own graphs (`Llama::graph`, `Bert::graph`) run on the
//! `CpuExecutor`, the plain-loop references compiled to wasm, for browsers without WebGPU.
//!
//! Generation replays the one-token decode graph for every position, the prompt's included:
//! the executor keeps the KV-cache state between runs, while a separate prompt graph would
//! need a second executor with a state of its own. Tokens are the same as a prompt pass gives
//! (attention over the cache is causal either way); only the speed differs, and the CPU is
//! the slow path anyway. Between tokens the loop yields to the event loop, so a worker can
//! receive a stop message while it generates.

use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::error::{Error, Result};
use crate::exec::CpuExecutor;
use crate::graph::NodeId;
use crate::kv::KvCache;
use crate::model::generate::seed_for;
use crate::model::llama::{POS, SEED, TEMPERATURE};
use crate::model::{guard, Bert, GenerateOptions, GenerateStats, Generation, Head, Llama, Pooling, Sampling};
use crate::tensor::HostData;

/// The KV cache shape of a CPU run: the executor holds any size, so WebGPU's default limits
/// (the loosest check that exists without a device) only bound absurd contexts.
fn cpu_cache(model: &Llama, positions: usize) -> Result<KvCache> {
    KvCache::with_limits(&wgpu::Limits::default(), model.kv_config(positions))
}

/// Seconds on the JS clock.
fn now() -> f64 {
    js_sys::Date::now() / 1e3
}

/// Lets the event loop run (a macrotask: `setTimeout(0)`), so messages and the page's
/// rendering are not held up by a long CPU generation.
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let timer = js_sys::Reflect::get(&global, &JsValue::from_str("setTimeout")).ok();
        match timer.and_then(|t| t.dyn_into::<js_sys::Function>().ok()) {
            Some(t) => drop(t.call2(&global, &resolve, &JsValue::from(0))),
            None => drop(resolve.call0(&JsValue::NULL)),
        }
    });
    let _ = JsFuture::from(promise).await;
}

use wasm_bindgen::JsCast;

/// Checks prompt ids as `Generator` does (not empty, inside the vocabulary).
fn check_ids(ids: &[u32], vocab: usize) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::Usage("the prompt is empty: give at least one token of text".into()));
    }
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(bad) => Err(Error::Usage(format!("token id {bad} is outside the model's vocabulary of {vocab}"))),
        None => Ok(()),
    }
}

/// Runs one decode step at `pos` and returns the sampled token, refusing non-finite logits
/// (a NaN would be sampled as token 0 over and over).
fn step(
    exe: &mut CpuExecutor,
    next: NodeId,
    logits: NodeId,
    token: u32,
    pos: usize,
    o: &GenerateOptions,
    n: usize,
) -> Result<u32> {
    exe.set_input("ids", &HostData::U32(vec![token]))?;
    exe.set_runtime_u32(POS, pos as u32)?;
    exe.set_runtime_f32(TEMPERATURE, o.temperature)?;
    exe.set_runtime_u32(SEED, seed_for(o.seed, n))?;
    exe.run()?;
    if let Some(i) = guard::first_non_finite(&exe.value(logits)?.to_f32()) {
        return Err(Error::Usage(format!(
            "the CPU executor produced a non-finite logit at element {i} of position {pos}"
        )));
    }
    match exe.value(next)? {
        HostData::U32(v) if v.len() == 1 => Ok(v[0]),
        other => Err(Error::Usage(format!("the sampler returned {} values instead of one token id", other.len()))),
    }
}

/// Generates as `Generator::generate` does, on the CPU executor: the same graph, sampler and
/// per-step seeds, so the same tokens.
pub async fn generate(
    model: &Llama,
    sampling: Sampling,
    prompt: &[u32],
    o: &GenerateOptions,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Generation> {
    o.check()?;
    sampling.check()?;
    check_ids(prompt, model.config.vocab)?;
    let t0 = now();
    let cache = cpu_cache(model, prompt.len() + o.max_tokens)?;
    let lg = model.graph(&cache, 1, Head::Sample(sampling))?;
    let next = lg.next.ok_or_else(|| Error::Usage("this graph samples no token".into()))?;
    let mut exe = CpuExecutor::new(&lg.graph);
    let mut stats = GenerateStats { prompt_tokens: prompt.len(), ..Default::default() };
    let t1 = now();
    // Every prompt position runs with the first draw's seed: only the last one's draw is kept,
    // as the GPU's prompt pass samples once after the whole prompt.
    let mut token = 0;
    for (pos, &id) in prompt.iter().enumerate() {
        token = step(&mut exe, next, lg.logits, id, pos, o, 0)?;
        yield_now().await;
    }
    let t2 = now();
    stats.prompt_setup_s = t1 - t0;
    stats.prefill_s = t2 - t1;
    let mut ids = Vec::new();
    let eos = model.config.eos_id;
    let stopped_at_eos = loop {
        ids.push(token);
        stats.generated_tokens = ids.len();
        if o.stop_at_eos && Some(token) == eos {
            break true;
        }
        if !on_token(token) || ids.len() >= o.max_tokens {
            break false;
        }
        yield_now().await;
        let pos = prompt.len() + ids.len() - 1;
        token = step(&mut exe, next, lg.logits, token, pos, o, ids.len())?;
    };
    stats.decode_s = now() - t2;
    Ok(Generation { ids, stopped_at_eos, stats })
}

/// The logits [T × vocab] of every position of `ids`, from an empty cache.
pub fn llama_logits(model: &Llama, ids: &[u32]) -> Result<Vec<f32>> {
    check_ids(ids, model.config.vocab)?;
    let cache = cpu_cache(model, ids.len())?;
    let lg = model.graph(&cache, ids.len(), Head::AllLogits)?;
    let mut exe = CpuExecutor::new(&lg.graph);
    exe.set_input("ids", &HostData::U32(ids.to_vec()))?;
    exe.set_runtime_u32(POS, 0)?;
    exe.run()?;
    Ok(exe.value(lg.logits)?.to_f32())
}

/// The encoder's last hidden state [T × hidden] and pooled vector (not normalised).
pub fn bert_run(bert: &Bert, pooling: Pooling, ids: &[u32]) -> Result<(Vec<f32>, Vec<f32>)> {
    let vocab = bert.config.vocab_size;
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        return Err(Error::Usage(format!("token id {bad} is outside the model's vocabulary of {vocab}")));
    }
    let t = ids.len();
    let bg = bert.graph(t, pooling)?;
    let mut exe = CpuExecutor::new(&bg.graph);
    exe.set_input("ids", &HostData::U32(ids.to_vec()))?;
    exe.set_input("positions", &HostData::U32((0..t as u32).collect()))?;
    exe.set_input("types", &HostData::U32(vec![0; t]))?;
    exe.run()?;
    Ok((exe.value(bg.hidden)?.to_f32(), exe.value(bg.pooled)?.to_f32()))
}

/// a [m, k] · b [k, n] on the CPU reference.
pub fn matmul(a: Vec<f32>, b: Vec<f32>, m: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    let g = super::matmul_graph(m, k, n)?;
    let mut exe = CpuExecutor::new(&g);
    exe.set_input("a", &HostData::F32(a))?;
    exe.set_input("b", &HostData::F32(b))?;
    exe.run()?;
    let out = g.outputs()[0];
    Ok(exe.value(out)?.to_f32())
}
