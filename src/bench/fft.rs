//! FNet token mixing (`Graph::fourier_mix`, Re(FFT2) of [L, hidden]) against the fused
//! bidirectional attention it replaces, at the same sequence length and width. Times are
//! medians of GPU timestamps (wall clock without TIMESTAMP_QUERY).

use super::{time, values};
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{AttentionOptions, Graph};
use crate::tensor::DType;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// Sequence lengths L.
    pub lens: Vec<usize>,
    /// Model width (the hidden-axis transform length; heads · head_dim for attention).
    pub hidden: usize,
    /// Attention heads of the comparison (head_dim = hidden / heads).
    pub heads: usize,
    pub repeats: usize,
}

async fn time_graph(ctx: &Context, g: &Graph, repeats: usize) -> Result<f64> {
    let mut exe = GpuExecutor::new(ctx, g)?;
    for (i, (name, id)) in g.inputs().enumerate() {
        exe.set_input(name, &values(i as u64 + 1, g.node(id).shape.iter().product()))?;
    }
    Ok(time(ctx, &mut exe, repeats).await?.us())
}

/// Runs the benchmark: one row per length with both times and their ratio.
pub async fn run(ctx: &Context, c: &Config) -> Result<serde_json::Value> {
    let (d, h) = (c.hidden, c.heads);
    let mut rows = Vec::new();
    for &l in &c.lens {
        let mut g = Graph::new();
        let x = g.input("x", &[l, d], DType::F32)?;
        let y = g.fourier_mix(x)?;
        g.output(y)?;
        let mix_us = time_graph(ctx, &g, c.repeats).await?;
        let mut g = Graph::new();
        let q = g.input("q", &[l, h, d / h], DType::F32)?;
        let k = g.input("k", &[l, h, d / h], DType::F32)?;
        let v = g.input("v", &[l, h, d / h], DType::F32)?;
        let y = g.attention(q, k, v, AttentionOptions::default())?;
        g.output(y)?;
        let attn_us = time_graph(ctx, &g, c.repeats).await?;
        // The usual FFT figure of merit, 5·N·log2(N) for the N = L·d point 2-D transform.
        let n = (l * d) as f64;
        rows.push(serde_json::json!({
            "len": l, "mix_us": mix_us, "mix_gflops_5nlogn": 5.0 * n * n.log2() / mix_us / 1e3,
            "attention_us": attn_us, "attention_over_mix": attn_us / mix_us,
        }));
    }
    Ok(serde_json::json!({
        "bench": "fft", "adapter": ctx.adapter().one_line(),
        "timing": if ctx.has(wgpu::Features::TIMESTAMP_QUERY) { "gpu timestamps" } else { "wall clock" },
        "hidden": d, "heads": h, "repeats": c.repeats, "rows": rows,
    }))
}

/// The report as a table.
pub fn table(v: &serde_json::Value) -> String {
    let f = |x: &serde_json::Value| x.as_f64().map_or("-".to_string(), |x| format!("{x:.1}"));
    let mut s = format!(
        "{} ({}), hidden {}, attention {} heads (bidirectional)\n",
        v["adapter"].as_str().unwrap_or("?"),
        v["timing"].as_str().unwrap_or("?"),
        v["hidden"],
        v["heads"]
    );
    s += &format!("{:>7} {:>12} {:>16} {:>14} {:>10}\n", "L", "mixing us", "GFLOP/s 5NlogN", "attention us", "ratio");
    for r in v["rows"].as_array().into_iter().flatten() {
        s += &format!(
            "{:>7} {:>12} {:>16} {:>14} {:>10}\n",
            r["len"].to_string(),
            f(&r["mix_us"]),
            f(&r["mix_gflops_5nlogn"]),
            f(&r["attention_us"]),
            format!("{:.2}", r["attention_over_mix"].as_f64().unwrap_or(0.0))
        );
    }
    s
}
