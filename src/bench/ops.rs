//! Row ops at SmolLM2-135M decode sizes (hidden 576, 9 query / 3 KV heads of 64, vocabulary
//! 49152): norms, rope, argmax and sampling, one node per plan. The baseline for GPU sampling
//! is what it replaces: reading the whole logits row back to the host.

use std::time::Instant;

use super::{median, time, values};
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{Graph, NodeId, RopeMode, SampleOptions};
use crate::tensor::DType;

const VOCAB: usize = 49152;
const HIDDEN: usize = 576;

/// One timed row: `bytes` is what the kernel must move (reads + writes).
async fn row(
    ctx: &Context,
    name: &str,
    shape: &[usize],
    g: &Graph,
    x: &[f32],
    bytes: usize,
    repeats: usize,
) -> Result<serde_json::Value> {
    let mut exe = GpuExecutor::new(ctx, g)?;
    exe.set_input("x", x)?;
    exe.set_runtime_f32(0, 0.8)?; // temperature for the sample rows
    exe.set_runtime_u32(1, 42)?; // seed
    let t = time(ctx, &mut exe, repeats).await?;
    let us = t.us();
    Ok(serde_json::json!({
        "op": name, "shape": shape, "us": us, "gpu_us": t.gpu_us, "wall_us": t.wall_us,
        "bytes": bytes, "gb_per_s": bytes as f64 / us / 1e3,
    }))
}

fn graph(shape: &[usize], build: impl FnOnce(&mut Graph, NodeId) -> Result<NodeId>) -> Result<Graph> {
    let mut g = Graph::new();
    let x = g.input("x", shape, DType::F32)?;
    let y = build(&mut g, x)?;
    g.output(y)?;
    Ok(g)
}

/// Runs every row; returns them with the logits-readback baseline.
pub async fn run(ctx: &Context, repeats: usize) -> Result<serde_json::Value> {
    let mut rows = Vec::new();
    let f = 4; // bytes per f32
    for tokens in [1, 128] {
        let shape = [tokens, HIDDEN];
        let x = values(1, tokens * HIDDEN);
        let g = graph(&shape, |g, x| {
            let w = g.weight("w", &[HIDDEN], values(2, HIDDEN))?;
            g.rms_norm(x, w, 1e-5)
        })?;
        rows.push(row(ctx, "rms_norm", &shape, &g, &x, f * (2 * tokens * HIDDEN + HIDDEN), repeats).await?);
        let g = graph(&shape, |g, x| {
            let w = g.weight("w", &[HIDDEN], values(2, HIDDEN))?;
            let b = g.weight("b", &[HIDDEN], values(3, HIDDEN))?;
            g.layer_norm(x, w, b, 1e-5)
        })?;
        rows.push(row(ctx, "layer_norm", &shape, &g, &x, f * (2 * tokens * HIDDEN + 2 * HIDDEN), repeats).await?);
    }
    for (tokens, heads) in [(1, 9), (1, 3), (128, 9)] {
        let shape = [tokens, heads, 64];
        let n = tokens * heads * 64;
        let g = graph(&shape, |g, x| g.rope(x, RopeMode::Adjacent, 100000.0, 2))?;
        rows.push(row(ctx, "rope_adjacent", &shape, &g, &values(4, n), f * 2 * n, repeats).await?);
    }
    let logits: Vec<f32> = values(5, VOCAB).iter().map(|v| v * 12.0).collect();
    let shape = [VOCAB];
    let g = graph(&shape, |g, x| g.argmax(x))?;
    rows.push(row(ctx, "argmax", &shape, &g, &logits, f * VOCAB + 4, repeats).await?);
    for (k, p) in [(0, 1.0), (40, 1.0), (0, 0.95), (40, 0.95)] {
        let g =
            graph(&shape, |g, x| g.sample(x, SampleOptions { top_k: k, top_p: p, temperature_slot: 0, seed_slot: 1 }))?;
        let name = format!("sample (T 0.8, top_k {k}, top_p {p})");
        rows.push(row(ctx, &name, &shape, &g, &logits, f * VOCAB + 4, repeats).await?);
    }
    // Baseline: read the logits back (what a host-side sampler would need first).
    let g = graph(&shape, |g, x| g.scale(x, crate::graph::Scalar::Const(1.0)))?;
    let y = NodeId(g.nodes().len() - 1);
    let mut exe = GpuExecutor::new(ctx, &g)?;
    exe.set_input("x", &logits)?;
    exe.run()?;
    exe.read(y).await?;
    let mut wall = Vec::new();
    for _ in 0..repeats.max(1) {
        exe.run()?;
        ctx.sync().await?;
        let t0 = Instant::now();
        exe.read(y).await?;
        wall.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let readback_us = median(&mut wall);
    Ok(serde_json::json!({
        "bench": "ops", "adapter": ctx.adapter().one_line(), "repeats": repeats, "rows": rows,
        "baseline": { "op": "read back 49152 f32 logits (wall)", "us": readback_us, "gb_per_s": (f * VOCAB) as f64 / readback_us / 1e3 },
    }))
}
