//! Decode GEMV: y = x · Wᵀ for one row x on SmolLM2-135M's linear shapes (hidden 576, KV 192,
//! FFN 1536, vocabulary 49152), for every weight dtype, against the naive matmul on the same
//! shape. The figure of merit is bandwidth: bytes of W read per run (the GPU layout, scales
//! included) over the GPU time of the run, since a GEMV reads every weight once and does two
//! flops per weight. A few prefill rows (64 tokens) time the tiled quantized matmul against the
//! naive f32 matmul, where GFLOP/s is the figure.

use serde_json::{json, Value};

use super::{time, values};
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{Graph, MatmulImpl, MatmulOptions};
use crate::kernels;
use crate::tensor::{DType, HostData};

/// (in, out) = (K, N) of SmolLM2-135M's decode matmuls: q/o projections, k/v projections,
/// gate/up, down, and the tied LM head.
pub const SHAPES: &[(usize, usize)] = &[(576, 576), (576, 192), (576, 1536), (1536, 576), (576, 49152)];

/// Tokens of the prefill rows.
pub const PREFILL_TOKENS: usize = 64;
/// (K, N) of the prefill rows: gate/up and down projections.
pub const PREFILL_SHAPES: &[(usize, usize)] = &[(576, 1536), (1536, 576)];

/// The prefill kernels: (label, weight dtype, implementation).
const PREFILL_KERNELS: &[(&str, DType, MatmulImpl)] = &[
    ("prefill naive f32 (baseline)", DType::F32, MatmulImpl::Naive),
    ("prefill tiled q8_0", DType::Q8_0, MatmulImpl::Auto),
    ("prefill tiled q4_1", DType::Q4_1, MatmulImpl::Auto),
];

/// The kernels compared on each shape: (label, weight dtype, implementation).
const KERNELS: &[(&str, DType, MatmulImpl)] = &[
    ("naive f32 (baseline)", DType::F32, MatmulImpl::Naive),
    ("gemv f32", DType::F32, MatmulImpl::Auto),
    ("gemv f32, shared-memory reduce", DType::F32, MatmulImpl::GemvShared),
    ("gemv f16", DType::F16, MatmulImpl::Auto),
    ("gemv q8_0", DType::Q8_0, MatmulImpl::Auto),
    ("gemv q4_1", DType::Q4_1, MatmulImpl::Auto),
    // The GPU kernels where Auto picks another (CPU adapters): the before/after of that choice.
    ("gemv q8_0, subgroup tree", DType::Q8_0, MatmulImpl::GemvSubgroup),
    ("gemv q4_1, subgroup tree", DType::Q4_1, MatmulImpl::GemvSubgroup),
    ("gemv f32, subgroup tree", DType::F32, MatmulImpl::GemvSubgroup),
];

fn weight(dtype: DType, w: Vec<f32>) -> HostData {
    match dtype {
        DType::F16 => HostData::F16(w.iter().map(|&v| half::f16::from_f32(v)).collect()),
        DType::Q8_0 | DType::Q4_1 => {
            HostData::Quant { dtype, len: w.len(), bytes: crate::cpu::quant::quantize(dtype, &w) }
        }
        _ => HostData::F32(w),
    }
}

/// Times every kernel on every shape (median of `repeats` after a warm-up run).
pub async fn run(ctx: &Context, repeats: usize) -> Result<Value> {
    run_shapes(ctx, repeats, SHAPES, PREFILL_SHAPES).await
}

/// `run` restricted to the kernels whose label contains `only` (all when empty), on the decode
/// shapes `shapes` (SmolLM2's when empty) and the usual prefill shapes.
pub async fn run_filtered(ctx: &Context, repeats: usize, shapes: &[(usize, usize)], only: &str) -> Result<Value> {
    let shapes = if shapes.is_empty() { SHAPES } else { shapes };
    run_cases(ctx, repeats, shapes, PREFILL_SHAPES, only).await
}

/// `run` over chosen decode and prefill (K, N) shapes (the suite's quick mode takes one).
pub async fn run_shapes(
    ctx: &Context,
    repeats: usize,
    shapes: &[(usize, usize)],
    prefill_shapes: &[(usize, usize)],
) -> Result<Value> {
    run_cases(ctx, repeats, shapes, prefill_shapes, "").await
}

async fn run_cases(
    ctx: &Context,
    repeats: usize,
    shapes: &[(usize, usize)],
    prefill_shapes: &[(usize, usize)],
    only: &str,
) -> Result<Value> {
    let has_f16 = ctx.has(wgpu::Features::SHADER_F16);
    let has_subgroup = ctx.has(wgpu::Features::SUBGROUP);
    let mut rows = Vec::new();
    let cases = shapes
        .iter()
        .map(|&s| (1, s, KERNELS))
        .chain(prefill_shapes.iter().map(|&s| (PREFILL_TOKENS, s, PREFILL_KERNELS)));
    for (c, (m, (k, n), list)) in cases.enumerate() {
        let w = values(100 + c as u64, n * k);
        let mut naive_us = None;
        for &(label, dtype, imp) in list.iter().filter(|(label, ..)| label.contains(only)) {
            if dtype == DType::F16 && !has_f16 {
                rows.push(
                    json!({ "kernel": label, "m": m, "k": k, "n": n, "skipped": "the adapter has no SHADER_F16" }),
                );
                continue;
            }
            if imp == MatmulImpl::GemvSubgroup && !has_subgroup {
                rows.push(json!({ "kernel": label, "m": m, "k": k, "n": n, "skipped": "the adapter has no SUBGROUP" }));
                continue;
            }
            let mut g = Graph::new();
            let x = g.input("x", &[m, k], DType::F32)?;
            let wn = g.weight("w", &[n, k], weight(dtype, w.clone()))?;
            let y = g.matmul_with(x, wn, MatmulOptions { trans_b: true, imp, ..Default::default() })?;
            g.output(y)?;
            let mut exe = GpuExecutor::new(ctx, &g)?;
            exe.set_input("x", &values(7, m * k))?;
            let t = time(ctx, &mut exe, repeats).await?;
            let us = t.us();
            let bytes = kernels::gpu_bytes(dtype, n * k);
            if imp == MatmulImpl::Naive {
                naive_us = Some(us);
            }
            rows.push(json!({
                "kernel": label, "dtype": dtype.to_string(), "m": m, "k": k, "n": n, "weight_bytes": bytes,
                "us": us, "gpu_timed": t.gpu_us.is_some(), "gb_per_s": bytes as f64 / (us * 1e3),
                "gflop_per_s": 2.0 * (m * n * k) as f64 / (us * 1e3), "speedup_vs_naive": naive_us.map(|b| b / us),
            }));
        }
    }
    Ok(json!({ "bench": "gemv", "adapter": ctx.adapter().one_line(), "repeats": repeats, "rows": rows }))
}

/// The rows of `run`'s result as a table.
pub fn table(v: &Value) -> String {
    let mut s = format!("adapter: {}\n", v["adapter"].as_str().unwrap_or("?"));
    s += &format!(
        "{:<32} {:>4} {:>6} {:>6} {:>11} {:>10} {:>9} {:>9} {:>9}\n",
        "kernel", "m", "k", "n", "W bytes", "time (us)", "GB/s", "GFLOP/s", "vs naive"
    );
    for r in v["rows"].as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
        let kernel = r["kernel"].as_str().unwrap_or("?");
        let (m, k, n) = (r["m"].as_u64().unwrap_or(0), r["k"].as_u64().unwrap_or(0), r["n"].as_u64().unwrap_or(0));
        if let Some(why) = r["skipped"].as_str() {
            s += &format!("{kernel:<32} {m:>4} {k:>6} {n:>6}  skipped: {why}\n");
            continue;
        }
        let f = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
        let speedup = r["speedup_vs_naive"].as_f64().map(|x| format!("{x:.1}x")).unwrap_or_else(|| "-".into());
        let bytes = r["weight_bytes"].as_u64().unwrap_or(0);
        s += &format!(
            "{kernel:<32} {m:>4} {k:>6} {n:>6} {bytes:>11} {:>10.1} {:>9.2} {:>9.2} {speedup:>9}\n",
            f("us"),
            f("gb_per_s"),
            f("gflop_per_s")
        );
    }
    s
}
