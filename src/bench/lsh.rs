//! LSH attention against fused dense attention over sequence length: the O(L log L) against
//! the O(L²) curve, with each plan's peak GPU memory. Reformer's shape by default (8 heads of
//! 64, 4 hashing rounds, chunks of 64 attending to themselves and the chunk before, causal,
//! 2·L/chunk buckets as Reformer sizes them). Dense rows stop at `dense_max` (its time grows
//! with L², so long ones take minutes on a software adapter).

use super::attention::time_graph;
use crate::error::Result;
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
}

/// Reformer's bucket count for a length: about two chunks' worth of tokens per bucket pair,
/// even and at least 2.
pub fn buckets_for(len: usize, chunk: usize) -> usize {
    (2 * len / chunk).max(2).next_multiple_of(2)
}

async fn lsh_row(ctx: &Context, c: &Config, l: usize) -> Result<(f64, u64)> {
    let (h, d) = (c.heads, c.head_dim);
    let buckets = Buckets::new(&[buckets_for(l, c.chunk)])?;
    let mut g = Graph::new();
    let qk = g.input("qk", &[h, l, d], DType::F32)?;
    let v = g.input("v", &[h, l, d], DType::F32)?;
    let rot = g.input("rotations", &[h, d, c.rounds, buckets.rotation_half()], DType::F32)?;
    let o = LshOptions { buckets, rounds: c.rounds, chunk: c.chunk, before: 1, after: 0, causal: true, mask: None };
    let y = g.lsh_attention(qk, v, rot, o)?;
    g.output(y)?;
    time_graph(ctx, &g, c.repeats).await
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
    s
}
