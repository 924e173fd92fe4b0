//! Attention: fused prefill (against the composite of primitives where its [H, L, L] scores
//! fit) and split-key decode steps over a KV cache (against the composite over the same keys).
//! Times are medians of GPU timestamps (wall clock without TIMESTAMP_QUERY).

use super::{time, values};
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{AttentionOptions, Graph};
use crate::kv::{KvCache, KvCacheConfig};
use crate::tensor::DType;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Prefill sequence lengths (causal self-attention over the whole sequence).
    pub prefill: Vec<usize>,
    /// KV cache lengths of the decode steps (one new token attending to that many keys).
    pub decode: Vec<usize>,
    /// Longest prefill also run through the composite path.
    pub composite_max: usize,
    /// Parts the decode kernel splits the cache into (None: the device's default, see
    /// `KvCache::new`).
    pub splits: Option<u32>,
    /// Keys and values (and the decode KV cache) in f16 instead of f32.
    pub kv_f16: bool,
    pub repeats: usize,
}

fn f32_bytes(n: usize) -> u64 {
    4 * n as u64
}

/// Median GPU (or wall) microseconds of the graph's plan, inputs filled with values.
pub(super) async fn time_graph(ctx: &Context, g: &Graph, repeats: usize) -> Result<(f64, u64)> {
    let mut exe = GpuExecutor::new(ctx, g)?;
    for (i, (name, id)) in g.inputs().enumerate() {
        let x = values(i as u64 + 1, g.node(id).shape.iter().product());
        match g.node(id).dtype {
            DType::F16 => exe.set_input(name, &x.iter().map(|&v| half::f16::from_f32(v)).collect::<Vec<_>>())?,
            _ => exe.set_input(name, &x)?,
        }
    }
    let t = time(ctx, &mut exe, repeats).await?;
    Ok((t.us(), exe.plan().peak_bytes()))
}

/// Runs the benchmark and returns one JSON object with a row per measurement.
pub async fn run(ctx: &Context, c: &Config) -> Result<serde_json::Value> {
    let (h, hkv, d) = (c.heads, c.kv_heads, c.head_dim);
    let kv_dtype = if c.kv_f16 { DType::F16 } else { DType::F32 };
    let kv_bytes = |n: usize| kv_dtype.bytes_for(n) as u64;
    let mut prefill = Vec::new();
    for &l in &c.prefill {
        let mut g = Graph::new();
        let q = g.input("q", &[l, h, d], DType::F32)?;
        let k = g.input("k", &[l, hkv, d], kv_dtype)?;
        let v = g.input("v", &[l, hkv, d], kv_dtype)?;
        let causal = AttentionOptions { causal: true, ..Default::default() };
        let y = g.attention(q, k, v, causal)?;
        g.output(y)?;
        // Multiply-adds of q·k and p·v over the causally visible (query, key) pairs.
        let flops = 4.0 * (d * h) as f64 * (l * (l + 1) / 2) as f64;
        let (us, peak) = time_graph(ctx, &g, c.repeats).await?;
        let mut row = serde_json::json!({
            "len": l, "fused_us": us, "fused_gflops": flops / us / 1e3,
            "qkvo_bytes": f32_bytes(2 * l * h * d) + kv_bytes(2 * l * hkv * d), "fused_peak_bytes": peak,
        });
        if l <= c.composite_max {
            let mut g = Graph::new();
            let q = g.input("q", &[l, h, d], DType::F32)?;
            let k = g.input("k", &[l, hkv, d], DType::F32)?;
            let v = g.input("v", &[l, hkv, d], DType::F32)?;
            let y = g.attention_composite(q, k, v, causal)?;
            g.output(y)?;
            let (cus, cpeak) = time_graph(ctx, &g, c.repeats).await?;
            row["composite_us"] = cus.into();
            row["composite_gflops"] = (flops / cus / 1e3).into();
            row["composite_peak_bytes"] = cpeak.into();
            row["speedup"] = (cus / us).into();
        }
        prefill.push(row);
    }
    let mut decode = Vec::new();
    let max_ctx = c.decode.iter().copied().max().unwrap_or(1);
    for &n in &c.decode {
        let mut cache = KvCache::new(ctx, KvCacheConfig { layers: 1, max_ctx, kv_heads: hkv, head_dim: d, slot: 0 })?
            .with_dtype(kv_dtype)?;
        if let Some(s) = c.splits {
            cache.set_decode_splits(s)?;
        }
        let mut g = Graph::new();
        let q = g.input("q", &[1, h, d], DType::F32)?;
        let k = g.input("k", &[1, hkv, d], DType::F32)?;
        let v = g.input("v", &[1, hkv, d], DType::F32)?;
        let y = cache.attend(&mut g, 0, q, k, v, true)?;
        g.output(y)?;
        let mut exe = GpuExecutor::new(ctx, &g)?;
        for (i, name) in ["q", "k", "v"].iter().enumerate() {
            let len = g.node([q, k, v][i]).shape.iter().product();
            exe.set_input(name, &values(i as u64 + 1, len))?;
        }
        // The new token is the n-th: it is written at position n - 1 and attends to n keys.
        exe.set_runtime_u32(0, n as u32 - 1)?;
        let t = time(ctx, &mut exe, c.repeats).await?;
        let read = kv_bytes(2 * n * hkv * d);
        // The unfused baseline: the composite over exactly n keys (no cache, no row writes).
        let mut g = Graph::new();
        let q = g.input("q", &[1, h, d], DType::F32)?;
        let k = g.input("k", &[n, hkv, d], DType::F32)?;
        let v = g.input("v", &[n, hkv, d], DType::F32)?;
        let y = g.attention_composite(q, k, v, AttentionOptions::default())?;
        g.output(y)?;
        let (cus, _) = time_graph(ctx, &g, c.repeats).await?;
        decode.push(serde_json::json!({
            "cache_len": n, "us": t.us(), "kv_read_gbps": read as f64 / t.us() / 1e3,
            "cache_bytes": cache.bytes(), "kv_read_bytes": read, "steps_per_s": 1e6 / t.us(), "splits": cache.decode_splits(),
            "composite_us": cus, "speedup": cus / t.us(),
        }));
    }
    Ok(serde_json::json!({
        "bench": "attention", "adapter": ctx.adapter().one_line(), "timing": if ctx.has(wgpu::Features::TIMESTAMP_QUERY) { "gpu timestamps" } else { "wall clock" },
        "heads": h, "kv_heads": hkv, "head_dim": d, "kv_dtype": kv_dtype.to_string(), "repeats": c.repeats, "prefill": prefill, "decode": decode,
    }))
}

/// The report as two tables.
pub fn table(v: &serde_json::Value) -> String {
    let f = |x: &serde_json::Value| x.as_f64().map_or("-".to_string(), |x| format!("{x:.1}"));
    let mib = |x: &serde_json::Value| x.as_f64().map_or("-".to_string(), |x| format!("{:.1}", x / (1u64 << 20) as f64));
    let mut s = format!(
        "{} ({}), H={} Hkv={} d={}, k/v {}, causal\n",
        v["adapter"].as_str().unwrap_or("?"),
        v["timing"].as_str().unwrap_or("?"),
        v["heads"],
        v["kv_heads"],
        v["head_dim"],
        v["kv_dtype"].as_str().unwrap_or("f32")
    );
    s += &format!(
        "{:>7} {:>12} {:>9} {:>14} {:>9} {:>8} {:>10} {:>12}\n",
        "prefill", "fused us", "GFLOP/s", "composite us", "GFLOP/s", "speedup", "QKVO MiB", "comp. MiB"
    );
    for r in v["prefill"].as_array().into_iter().flatten() {
        s += &format!(
            "{:>7} {:>12} {:>9} {:>14} {:>9} {:>8} {:>10} {:>12}\n",
            r["len"].to_string(),
            f(&r["fused_us"]),
            f(&r["fused_gflops"]),
            f(&r["composite_us"]),
            f(&r["composite_gflops"]),
            f(&r["speedup"]),
            mib(&r["qkvo_bytes"]),
            mib(&r["composite_peak_bytes"])
        );
    }
    s += &format!(
        "{:>7} {:>7} {:>12} {:>10} {:>10} {:>14} {:>8} {:>10}\n",
        "decode", "splits", "us/step", "KV GB/s", "steps/s", "composite us", "speedup", "cache MiB"
    );
    for r in v["decode"].as_array().into_iter().flatten() {
        s += &format!(
            "{:>7} {:>7} {:>12} {:>10} {:>10} {:>14} {:>8} {:>10}\n",
            r["cache_len"].to_string(),
            r["splits"].to_string(),
            f(&r["us"]),
            format!("{:.2}", r["kv_read_gbps"].as_f64().unwrap_or(0.0)),
            f(&r["steps_per_s"]),
            f(&r["composite_us"]),
            f(&r["speedup"]),
            mib(&r["cache_bytes"])
        );
    }
    s
}
