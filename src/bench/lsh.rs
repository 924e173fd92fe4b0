//! LSH attention against fused dense attention over sequence length: the O(L log L) against
//! the O(L²) curve, with each plan's peak GPU memory. Reformer's shape by default (8 heads of
//! 64, 4 hashing rounds, chunks of 64 attending to themselves and the chunk before, causal,
//! 2·L/chunk buckets as Reformer sizes them). Dense rows stop at `dense_max` (its time grows
//! with L², so long ones take minutes on a software adapter).

use super::attention::time_graph;
use super::values;
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{AttentionOptions, Buckets, Graph, LshOptions};
use crate::tensor::DType;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    pub lens: Vec<usize>,
    pub heads: usize,
    pub head_dim: usize,
    pub rounds: usize,
    pub chunk: usize,
    /// Longest length also run through dense attention.
    pub dense_max: usize,
    pub repeats: usize,
    /// Also time every LSH node once (GPU timestamps; rows get `lsh_profile_us`: [op, µs]
    /// pairs in graph order).
    pub profile: bool,
}

/// Reformer's bucket count for a length: about two chunks' worth of tokens per bucket pair,
/// even and at least 2.
pub fn buckets_for(len: usize, chunk: usize) -> usize {
    (2 * len / chunk).max(2).next_multiple_of(2)
}

/// The graph of one LSH row: Reformer's causal LSH attention at length l.
fn lsh_graph(c: &Config, l: usize) -> Result<Graph> {
    let (h, d) = (c.heads, c.head_dim);
    let buckets = Buckets::new(&[buckets_for(l, c.chunk)])?;
    let mut g = Graph::new();
    let qk = g.input("qk", &[h, l, d], DType::F32)?;
    let v = g.input("v", &[h, l, d], DType::F32)?;
    let rot = g.input("rotations", &[h, d, c.rounds, buckets.rotation_half()], DType::F32)?;
    let o = LshOptions { buckets, rounds: c.rounds, chunk: c.chunk, before: 1, after: 0, causal: true, mask: None };
    let y = g.lsh_attention(qk, v, rot, o)?;
    g.output(y)?;
    Ok(g)
}

async fn lsh_row(ctx: &Context, c: &Config, l: usize) -> Result<(f64, u64)> {
    time_graph(ctx, &lsh_graph(c, l)?, c.repeats).await
}

/// GPU microseconds per op of one LSH run (one timed pass per node, after a warm-up run), in
/// graph order, summed over nodes of the same op; None without timestamp queries.
async fn lsh_profile(ctx: &Context, c: &Config, l: usize) -> Result<Option<Vec<(String, f64)>>> {
    if !ctx.has(wgpu::Features::TIMESTAMP_QUERY) {
        return Ok(None);
    }
    let g = lsh_graph(c, l)?;
    let mut exe = GpuExecutor::new(ctx, &g)?;
    for (i, (name, id)) in g.inputs().enumerate() {
        exe.set_input(name, &values(i as u64 + 1, g.node(id).shape.iter().product()))?;
    }
    exe.run()?;
    ctx.sync().await?;
    let mut by_op: Vec<(String, f64)> = Vec::new();
    for r in exe.run_profiled().await?.rows {
        let op = r.op.split_whitespace().next().unwrap_or("?").to_string();
        match by_op.iter_mut().find(|(o, _)| *o == op) {
            Some((_, us)) => *us += r.ns / 1e3,
            None => by_op.push((op, r.ns / 1e3)),
        }
    }
    Ok(Some(by_op))
}

async fn dense_row(ctx: &Context, c: &Config, l: usize) -> Result<(f64, u64)> {
    let (h, d) = (c.heads, c.head_dim);
    let mut g = Graph::new();
    let q = g.input("q", &[l, h, d], DType::F32)?;
    let k = g.input("k", &[l, h, d], DType::F32)?;
    let v = g.input("v", &[l, h, d], DType::F32)?;
    let y = g.attention(q, k, v, AttentionOptions { causal: true, ..Default::default() })?;
    g.output(y)?;
    time_graph(ctx, &g, c.repeats).await
}

/// One row per length: LSH time and peak bytes, and dense ones up to `dense_max`.
pub async fn run(ctx: &Context, c: &Config) -> Result<serde_json::Value> {
    let mut rows = Vec::new();
    for &l in &c.lens {
        let (lsh_us, lsh_peak) = lsh_row(ctx, c, l).await?;
        let mut row = serde_json::json!({
            "len": l, "buckets": buckets_for(l, c.chunk), "lsh_us": lsh_us, "lsh_peak_bytes": lsh_peak,
        });
        if c.profile {
            if let Some(p) = lsh_profile(ctx, c, l).await? {
                row["lsh_profile_us"] = p.into_iter().map(|(op, us)| serde_json::json!([op, us])).collect();
            }
        }
        if l <= c.dense_max {
            let (dense_us, dense_peak) = dense_row(ctx, c, l).await?;
            row["dense_us"] = dense_us.into();
            row["dense_peak_bytes"] = dense_peak.into();
            row["dense_over_lsh"] = (dense_us / lsh_us).into();
        }
        rows.push(row);
    }
    Ok(serde_json::json!({
        "bench": "lsh", "adapter": ctx.adapter().one_line(),
        "timing": if ctx.has(wgpu::Features::TIMESTAMP_QUERY) { "gpu timestamps" } else { "wall clock" },
        "heads": c.heads, "head_dim": c.head_dim, "rounds": c.rounds, "chunk": c.chunk, "repeats": c.repeats,
        "rows": rows,
    }))
}

/// The rows as a table.
pub fn table(v: &serde_json::Value) -> String {
    let mut s = format!(
        "LSH vs dense causal attention on {} ({} heads x {}, {} rounds, chunk {}; {}, median of {})\n",
        v["adapter"].as_str().unwrap_or("?"),
        v["heads"],
        v["head_dim"],
        v["rounds"],
        v["chunk"],
        v["timing"].as_str().unwrap_or("?"),
        v["repeats"]
    );
    s += &format!(
        "{:>7} {:>7} {:>12} {:>10} {:>12} {:>10} {:>9}\n",
        "L", "buckets", "lsh ms", "lsh MiB", "dense ms", "dense MiB", "dense/lsh"
    );
    let mib =
        |x: &serde_json::Value| x.as_f64().map(|b| format!("{:.1}", b / (1u64 << 20) as f64)).unwrap_or("-".into());
    let ms = |x: &serde_json::Value| x.as_f64().map(|u| format!("{:.2}", u / 1e3)).unwrap_or("-".into());
    for r in v["rows"].as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
        let ratio = r["dense_over_lsh"].as_f64().map(|x| format!("{x:.2}x")).unwrap_or("-".into());
        s += &format!(
            "{:>7} {:>7} {:>12} {:>10} {:>12} {:>10} {:>9}\n",
            r["len"],
            r["buckets"],
            ms(&r["lsh_us"]),
            mib(&r["lsh_peak_bytes"]),
            ms(&r["dense_us"]),
            mib(&r["dense_peak_bytes"]),
            ratio
        );
    }
    for r in v["rows"].as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
        if let Some(p) = r["lsh_profile_us"].as_array() {
            let parts: Vec<String> = p
                .iter()
                .map(|x| format!("{} {:.2} ms", x[0].as_str().unwrap_or("?"), x[1].as_f64().unwrap_or(0.0) / 1e3))
                .collect();
            s += &format!("L={} LSH per op: {}\n", r["len"], parts.join(", "));
        }
    }
    s
}
