//! The demo's kernel benchmarks (`RawEngine::kernel`) and the LSH picture
//! (`RawEngine::lshPicture`): one op at a chosen size on the engine's backend, timed, and
//! checked against the CPU executor running the same graph.
//!
//! Timing: the graph is planned and run once first (pipeline compilation, first-touch of
//! buffers), then run again and timed: GPU time from timestamp queries around the pass where
//! the adapter has them, and always wall time from submit to the output read back.
//!
//! The CPU reference runs the same graph on `CpuExecutor` (f64 accumulation inside the
//! references). When that would cost more than `CPU_BUDGET_FLOPS` (seconds of scalar wasm),
//! the comparison is made on the same op at a smaller size (L halved until it fits), run on
//! both backends, and the result says which size was compared.

use serde::Deserialize;

use super::engine::Backend;
use crate::error::{Error, Result};
use crate::exec::{CpuExecutor, GpuExecutor};
use crate::gpu::Context;
use crate::graph::{AttentionOptions, Buckets, LshOptions};
use crate::{DType, Graph, HostData, NodeId};

/// Work the CPU reference may do in the browser before the check moves to a smaller size:
/// the wasm CPU executor manages a few hundred Mflop/s, so this is about a second.
const CPU_BUDGET_FLOPS: f64 = 3e8;

/// f32 unit roundoff (2^-24).
const EPS32: f64 = 5.96e-8;

/// One benchmark, as the page sends it (`op` names the variant).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum KernelSpec {
    /// a [m, k] · b [k, n].
    Matmul { m: usize, k: usize, n: usize },
    /// Fused dense attention: q, k, v [L, heads, d].
    Attention { l: usize, heads: usize, d: usize, causal: bool },
    /// Reformer LSH attention: qk, v [heads, L, d], `buckets` per round, `rounds` rounds,
    /// chunks of `chunk` tokens looking one chunk back.
    Lsh { l: usize, heads: usize, d: usize, buckets: usize, rounds: usize, chunk: usize, causal: bool },
    /// FNet mixing: Re(FFT2) of x [batch, L, d].
    Fft { batch: usize, l: usize, d: usize },
}

/// A built benchmark: its graph, its inputs (name, length, seed; made only once the sizes
/// have passed the limit check) and output node.
struct Built {
    graph: Graph,
    inputs: Vec<(&'static str, usize, u64)>,
    out: NodeId,
}

impl Built {
    /// The inputs' seeded random values.
    fn host_inputs(&self) -> Vec<(&'static str, HostData)> {
        self.inputs.iter().map(|&(name, n, seed)| (name, HostData::F32(random(seed, n)))).collect()
    }
}

/// Uniform values in [-1, 1) from a xorshift generator (reproducible per seed).
fn random(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

fn positive(what: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::Usage(format!("the kernel size {what} must be at least 1")));
    }
    Ok(())
}

impl KernelSpec {
    /// The op's name in results.
    fn name(&self) -> &'static str {
        match self {
            Self::Matmul { .. } => "matmul",
            Self::Attention { .. } => "attention",
            Self::Lsh { .. } => "lsh_attention",
            Self::Fft { .. } => "fourier_mix",
        }
    }

    /// The size as the page shows it.
    fn size(&self) -> String {
        match *self {
            Self::Matmul { m, k, n } => format!("{m}×{k}·{k}×{n}"),
            Self::Attention { l, heads, d, causal } => {
                format!("L={l} H={heads} d={d}{}", if causal { " causal" } else { "" })
            }
            Self::Lsh { l, heads, d, buckets, rounds, chunk, causal } => format!(
                "L={l} H={heads} d={d} {buckets} buckets × {rounds} rounds, chunk {chunk}{}",
                if causal { " causal" } else { "" }
            ),
            Self::Fft { batch, l, d } => format!("B={batch} L={l} D={d}"),
        }
    }

    /// Floating-point work of one run (for GFLOP/s and the CPU budget). Attention counts
    /// q·k and p·v (4·L·Lk·d per head), half the keys when causal; LSH the same over its
    /// windows of (1 + before) chunks per round; FFT 5·N·log2(N) per complex transform of N.
    fn flops(&self) -> f64 {
        match *self {
            Self::Matmul { m, k, n } => 2.0 * (m * k * n) as f64,
            Self::Attention { l, heads, d, causal } => {
                let keys = if causal { (l as f64 + 1.0) / 2.0 } else { l as f64 };
                4.0 * (heads * l * d) as f64 * keys
            }
            Self::Lsh { l, heads, d, rounds, chunk, .. } => {
                let keys = (2 * chunk).min(l) as f64;
                4.0 * (heads * rounds * l * d) as f64 * keys
            }
            Self::Fft { batch, l, d } => {
                let n = (batch * l * d) as f64;
                5.0 * n * ((l as f64).log2().max(1.0) + (d as f64).log2().max(1.0))
            }
        }
    }

    /// Tokens per run (LSH: heads × tokens; FFT: batch × tokens), for tokens/s.
    fn tokens(&self) -> Option<f64> {
        match *self {
            Self::Lsh { l, heads, .. } => Some((heads * l) as f64),
            Self::Fft { batch, l, .. } => Some((batch * l) as f64),
            _ => None,
        }
    }

    /// The same op with L (or m) halved, for a CPU check that fits the budget; None at the
    /// smallest size the op allows.
    fn smaller(&self) -> Option<Self> {
        let mut s = self.clone();
        match &mut s {
            Self::Matmul { m, .. } if *m > 1 => *m = m.div_ceil(2),
            Self::Attention { l, .. } if *l > 1 => *l = l.div_ceil(2),
            // Half the chunks, so L stays a multiple of the chunk.
            Self::Lsh { l, chunk, .. } if *l > 2 * *chunk => *l = (*l / *chunk).div_ceil(2) * *chunk,
            Self::Fft { batch, l, .. } if *batch > 1 || *l > 1 => {
                if *batch > 1 {
                    *batch = 1;
                } else {
                    *l = l.div_ceil(2);
                }
            }
            _ => return None,
        }
        Some(s)
    }

    /// The size the CPU reference checks: this one, or the first halving inside the budget.
    fn check_size(&self) -> Self {
        let mut s = self.clone();
        while s.flops() > CPU_BUDGET_FLOPS {
            match s.smaller() {
                Some(t) => s = t,
                None => break,
            }
        }
        s
    }

    /// The graph, its seeded random inputs in [-1, 1) and the output node.
    fn build(&self) -> Result<Built> {
        let mut g = Graph::new();
        let (inputs, out) = match *self {
            Self::Matmul { m, k, n } => {
                [("m", m), ("k", k), ("n", n)].iter().try_for_each(|(w, v)| positive(w, *v))?;
                let a = g.input("a", &[m, k], DType::F32)?;
                let b = g.input("b", &[k, n], DType::F32)?;
                let c = g.matmul(a, b)?;
                (vec![("a", m * k, 1), ("b", k * n, 2)], c)
            }
            Self::Attention { l, heads, d, causal } => {
                [("L", l), ("heads", heads), ("d", d)].iter().try_for_each(|(w, v)| positive(w, *v))?;
                let shape = [l, heads, d];
                let q = g.input("q", &shape, DType::F32)?;
                let k = g.input("k", &shape, DType::F32)?;
                let v = g.input("v", &shape, DType::F32)?;
                let y = g.attention(q, k, v, AttentionOptions { causal, ..Default::default() })?;
                let n = l * heads * d;
                (vec![("q", n, 3), ("k", n, 4), ("v", n, 5)], y)
            }
            Self::Lsh { l, heads, d, buckets, rounds, chunk, causal } => {
                [("L", l), ("heads", heads), ("d", d), ("rounds", rounds), ("chunk", chunk)]
                    .iter()
                    .try_for_each(|(w, v)| positive(w, *v))?;
                let b = Buckets::new(&[buckets])?;
                let half = b.rotation_half();
                let qk = g.input("qk", &[heads, l, d], DType::F32)?;
                let v = g.input("v", &[heads, l, d], DType::F32)?;
                let rot = g.input("rot", &[heads, d, rounds, half], DType::F32)?;
                let o = LshOptions { buckets: b, rounds, chunk, before: 1, after: 0, causal, mask: None };
                let y = g.lsh_attention(qk, v, rot, o)?;
                let n = heads * l * d;
                (vec![("qk", n, 6), ("v", n, 7), ("rot", heads * d * rounds * half, 8)], y)
            }
            Self::Fft { batch, l, d } => {
                [("batch", batch), ("L", l), ("D", d)].iter().try_for_each(|(w, v)| positive(w, *v))?;
                let x = g.input("x", &[batch, l, d], DType::F32)?;
                let y = g.fourier_mix(x)?;
                (vec![("x", batch * l * d, 9)], y)
            }
        };
        g.output(out)?;
        Ok(Built { graph: g, inputs, out })
    }

    /// The stated tolerance of a GPU output against the f64-accumulating CPU reference, as
    /// (atol, rtol) on |got - want| <= atol + rtol·|want|, and the sentence that derives it.
    fn tolerance(&self, want: &[f32]) -> (f64, f64, String) {
        let peak = want.iter().fold(0f64, |m, &x| m.max(x.abs() as f64));
        match *self {
            // Inputs in [-1, 1): each of the k products is at most 1, so the f32 dot
            // product's rounding is at most k·ε·Σ|a||b| <= k²·ε; a tiled or split sum
            // keeps the depth <= k.
            Self::Matmul { k, .. } => {
                let atol = (k * k) as f64 * EPS32;
                (atol, 0.0, format!("k²·ε₃₂ = {atol:.1e} (worst-case f32 rounding of {k} products of |x| < 1)"))
            }
            // Outputs are convex combinations of value rows (|v| < 1): errors are absolute,
            // from f32 dot products of d terms and exp (3 + 2|x| ulp in WebGPU), ~1e-6;
            // 2e-5 + 1e-4·|want| as the native attention and LSH tests state.
            Self::Attention { .. } | Self::Lsh { .. } => {
                (2e-5, 1e-4, "2e-5 + 1e-4·|want| (convex combinations of |v| < 1; the native tests' bound)".into())
            }
            // Each radix pass rounds by a few ε₃₂ of the norm: 4e-7·(log2 n + 2) of max|X|
            // per transform of n, three transforms of the padded length for Bluestein's
            // lengths; the two transforms of FFT2 add (the native FFT tests' bound).
            Self::Fft { l, d, .. } => {
                let rel = fft_tol(l) + fft_tol(d);
                (rel * peak, 0.0, format!("(tol(L) + tol(D))·max|X| = {:.1e}, tol(n) = 4e-7·(log2 n + 2)", rel * peak))
            }
        }
    }
}

/// Relative error bound of one f32 transform of length n (see `KernelSpec::tolerance`).
fn fft_tol(n: usize) -> f64 {
    let levels = |n: usize| (n as f64).log2() + 2.0;
    if crate::kernels::fft::radices(n).is_some() {
        4e-7 * levels(n)
    } else {
        4e-7 * 3.0 * levels((2 * n - 1).next_power_of_two())
    }
}

/// The largest tensor of `g` against the adapter's buffer limits: an error that names it, its
/// size, the limit and what to do, before anything is allocated.
fn check_limits(ctx: &Context, g: &Graph, spec: &KernelSpec) -> Result<()> {
    let l = ctx.limits();
    let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
    // In u64: on wasm32 a usize product of a large size would wrap. Every node of these
    // graphs is f32 or u32.
    let bytes_of = |n: &crate::Node| n.shape.iter().map(|&x| x as u64).product::<u64>() * 4;
    let Some(node) = g.nodes().iter().max_by_key(|n| bytes_of(n)) else {
        return Ok(());
    };
    let bytes = bytes_of(node);
    if bytes > max {
        return Err(Error::Usage(format!(
            "{} at {} needs a {:.1} MiB buffer for {} {:?}, above this adapter's limit of {:.1} MiB \
             (min of maxStorageBufferBindingSize {} and maxBufferSize {} bytes); choose a smaller size",
            spec.name(),
            spec.size(),
            bytes as f64 / 1048576.0,
            node.label(),
            node.shape,
            max as f64 / 1048576.0,
            l.max_storage_buffer_binding_size,
            l.max_buffer_size
        )));
    }
    Ok(())
}

/// Milliseconds on the JS clock (performance.now where the global has it, else Date.now).
fn now_ms() -> f64 {
    let global = js_sys::global();
    let perf = js_sys::Reflect::get(&global, &"performance".into()).ok().filter(|p| p.is_object());
    let t = perf.and_then(|p| {
        let f = js_sys::Reflect::get(&p, &"now".into()).ok()?;
        let f: js_sys::Function = wasm_bindgen::JsCast::dyn_into(f).ok()?;
        f.call0(&p).ok()?.as_f64()
    });
    t.unwrap_or_else(js_sys::Date::now)
}

/// Runs `b` on the GPU: a warm-up run, then a timed one. Returns the output, wall ms and the
/// GPU ms from timestamps (None where the adapter has no timestamp queries).
async fn run_gpu(ctx: &Context, b: &Built) -> Result<(Vec<f32>, f64, Option<f64>)> {
    let mut exe = GpuExecutor::new(ctx, &b.graph)?;
    for (name, data) in &b.host_inputs() {
        exe.set_input_host(name, data)?;
    }
    exe.run()?;
    exe.read(b.out).await?;
    let gpu_ms = if ctx.has(wgpu::Features::TIMESTAMP_QUERY) {
        let ns = exe.run_timed().await?;
        exe.read(b.out).await?;
        Some(ns / 1e6)
    } else {
        None
    };
    exe.poison_outputs();
    let t0 = now_ms();
    exe.run()?;
    let out = exe.read(b.out).await?.to_f32();
    Ok((out, now_ms() - t0, gpu_ms))
}

/// Runs `b` on the CPU executor; returns the output and wall ms.
fn run_cpu(b: &Built) -> Result<(Vec<f32>, f64)> {
    let mut exe = CpuExecutor::new(&b.graph);
    for (name, data) in &b.host_inputs() {
        exe.set_input(name, data)?;
    }
    let t0 = now_ms();
    exe.run()?;
    let out = exe.value(b.out)?.to_f32();
    Ok((out, now_ms() - t0))
}

/// Max |got - want|, and the largest ratio of an error to its allowance atol + rtol·|want|
/// (<= 1 is within tolerance; NaN anywhere counts as infinitely off).
fn compare(got: &[f32], want: &[f32], atol: f64, rtol: f64) -> (f64, f64) {
    let (mut max_abs, mut worst) = (0f64, 0f64);
    if got.len() != want.len() {
        return (f64::INFINITY, f64::INFINITY);
    }
    for (&g, &w) in got.iter().zip(want) {
        let e = (g as f64 - w as f64).abs();
        let e = if e.is_nan() { f64::INFINITY } else { e };
        max_abs = max_abs.max(e);
        worst = worst.max(e / (atol + rtol * (w as f64).abs()).max(f64::MIN_POSITIVE));
    }
    (max_abs, worst)
}

/// One benchmark on `backend`, as JSON for the page (see the package README for the fields).
pub async fn run(backend: &Backend, spec: KernelSpec) -> Result<serde_json::Value> {
    let built = spec.build()?;
    let mut v = serde_json::json!({ "op": spec.name(), "size": spec.size(), "flops": spec.flops() });
    let (ms, gpu_ms) = match backend {
        Backend::Gpu(ctx) => {
            check_limits(ctx, &built.graph, &spec)?;
            let (got, ms, gpu_ms) = run_gpu(ctx, &built).await?;
            let check = spec.check_size();
            let (got, want) = if check.size() == spec.size() {
                (got, run_cpu(&built)?.0)
            } else {
                let small = check.build()?;
                (run_gpu(ctx, &small).await?.0, run_cpu(&small)?.0)
            };
            // The tolerance of the size compared (an FFT's bound depends on its lengths).
            let (atol, rtol, why) = check.tolerance(&want);
            let (max_abs, worst) = compare(&got, &want, atol, rtol);
            v["backend"] = "webgpu".into();
            v["checkedOn"] = if check.size() == spec.size() {
                "the same size".into()
            } else {
                format!("{} (the CPU reference at this size would take too long)", check.size()).into()
            };
            v["maxAbsErr"] = max_abs.into();
            v["tolerance"] = serde_json::json!({ "atol": atol, "rtol": rtol, "why": why });
            v["errOverTol"] = worst.into();
            v["withinTol"] = (worst <= 1.0).into();
            (ms, gpu_ms)
        }
        Backend::Cpu => {
            let (_, ms) = run_cpu(&built)?;
            v["backend"] = "cpu".into();
            v["checkedOn"] = "not compared: the CPU backend is the reference itself".into();
            (ms, None)
        }
    };
    let secs = gpu_ms.unwrap_or(ms) / 1e3;
    v["ms"] = ms.into();
    v["gpuMs"] = gpu_ms.into();
    v["timing"] = if gpu_ms.is_some() { "GPU timestamps" } else { "wall clock" }.into();
    match spec.tokens() {
        Some(t) => v["tokensPerS"] = (t / secs).into(),
        None => v["gflops"] = (spec.flops() / secs / 1e9).into(),
    }
    Ok(v)
}

/// The LSH picture's request: one head of L tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PictureSpec {
    pub l: usize,
    pub d: usize,
    pub buckets: usize,
    pub rounds: usize,
    pub chunk: usize,
}

/// Largest L the picture draws (an L×L pattern on a canvas).
const PICTURE_MAX_L: usize = 1024;

/// Buckets and sorted order of one head, from the graph's own `lsh_hash` and `argsort_bits`
/// ops (the ones `lsh_attention` chains) run on `backend`: `{ l, chunk, before, after,
/// buckets (count), rounds, bucket: u32[R·L] (without round offsets), perm: u32[R·L] }`.
pub async fn picture(backend: &Backend, p: PictureSpec) -> Result<serde_json::Value> {
    if p.l < 2 || p.l > PICTURE_MAX_L || p.chunk == 0 || !p.l.is_multiple_of(p.chunk) || p.l <= p.chunk {
        return Err(Error::Usage(format!(
            "the LSH picture needs 2 <= L <= {PICTURE_MAX_L}, L a multiple of the chunk and more than one chunk; got L={} chunk={}",
            p.l, p.chunk
        )));
    }
    positive("rounds", p.rounds)?;
    let b = Buckets::new(&[p.buckets])?;
    let half = b.rotation_half();
    let mut g = Graph::new();
    let qk = g.input("qk", &[1, p.l, p.d], DType::F32)?;
    let rot = g.input("rot", &[1, p.d, p.rounds, half], DType::F32)?;
    let hash = g.lsh_hash(qk, rot, b, None)?;
    // The key width and the sort are exactly lsh_attention's (see Graph::lsh_attention).
    let top = p.rounds as u64 * (b.count() as u64 + 1);
    let perm = g.argsort_bits(hash, (64 - (top - 1).leading_zeros()).max(1))?;
    g.output(hash)?;
    g.output(perm)?;
    let inputs =
        [("qk", HostData::F32(random(10, p.l * p.d))), ("rot", HostData::F32(random(11, p.d * p.rounds * half)))];
    let (hash_v, perm_v) = match backend {
        Backend::Gpu(ctx) => {
            let mut out = crate::exec::run_once(ctx, &g, &inputs).await?.into_iter();
            (u32s(out.next())?, u32s(out.next())?)
        }
        Backend::Cpu => {
            let mut exe = CpuExecutor::new(&g);
            for (name, data) in &inputs {
                exe.set_input(name, data)?;
            }
            exe.run()?;
            (u32s(Some(exe.value(hash)?.clone()))?, u32s(Some(exe.value(perm)?.clone()))?)
        }
    };
    // Without a padding mask the round offset is r·count (see Graph::lsh_hash).
    let nb = b.count();
    let bucket: Vec<u32> = hash_v.iter().map(|h| h % nb).collect();
    Ok(serde_json::json!({
        "l": p.l, "chunk": p.chunk, "before": 1, "after": 0, "buckets": b.count(), "rounds": p.rounds,
        "bucket": bucket, "perm": perm_v,
    }))
}

/// The u32 values of an output (the hash and the permutation are u32 nodes).
fn u32s(v: Option<HostData>) -> Result<Vec<u32>> {
    match v {
        Some(HostData::U32(v)) => Ok(v),
        _ => Err(Error::Usage("the LSH picture's graph returned no u32 output".into())),
    }
}
