//! FNet token mixing (`Graph::fourier_mix`, Re(FFT2) of [L, hidden]) against the fused
//! bidirectional attention it replaces, at the same sequence length and width; against the full
//! complex 2-D transform of the same size (two `Graph::fft`, what mixing costs without its
//! real-input path); and against the DFT-as-matmul path of the same mixing (`MixImpl::Dft`,
//! where its matrices fit), which `MixImpl::Auto` does not take while it measures slower. Times
//! are medians of GPU timestamps (wall clock without TIMESTAMP_QUERY).

use super::{time, values};
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{AttentionOptions, Graph, MixImpl};
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
    /// Longest L at which attention is timed too (it grows as L², dense).
    pub attention_max: usize,
    /// Longest L at which the DFT-as-matmul path is timed too (O(L²·D) work).
    pub dft_max: usize,
    /// Repeats of the attention runs (each is as slow as L² makes it).
    pub attention_repeats: usize,
}

async fn time_graph(ctx: &Context, g: &Graph, repeats: usize) -> Result<f64> {
    let mut exe = GpuExecutor::new(ctx, g)?;
    for (i, (name, id)) in g.inputs().enumerate() {
        exe.set_input(name, &values(i as u64 + 1, g.node(id).shape.iter().product()))?;
    }
    Ok(time(ctx, &mut exe, repeats).await?.us())
}

async fn time_mix(ctx: &Context, l: usize, d: usize, imp: MixImpl, repeats: usize) -> Result<f64> {
    let mut g = Graph::new();
    let x = g.input("x", &[l, d], DType::F32)?;
    let y = g.fourier_mix_with(x, imp)?;
    g.output(y)?;
    time_graph(ctx, &g, repeats).await
}

/// Runs the benchmark: one row per length with the times and their ratios.
pub async fn run(ctx: &Context, c: &Config) -> Result<serde_json::Value> {
    let (d, h) = (c.hidden, c.heads);
    let mut rows = Vec::new();
    for &l in &c.lens {
        let mix_us = time_mix(ctx, l, d, MixImpl::Fft, c.repeats).await?;
        let dft_us = match l <= c.dft_max && crate::kernels::fft::dft_fits(ctx, 1, l, d) {
            true => Some(time_mix(ctx, l, d, MixImpl::Dft, c.repeats).await?),
            false => None,
        };
        let mut g = Graph::new();
        let z = g.input("z", &[l, d, 2], DType::F32)?;
        let zr = g.fft(z, 1, false)?;
        let y = g.fft(zr, 0, false)?;
        g.output(y)?;
        let complex_us = time_graph(ctx, &g, c.repeats).await?;
        let attn_us = if l <= c.attention_max {
            let mut g = Graph::new();
            let q = g.input("q", &[l, h, d / h], DType::F32)?;
            let k = g.input("k", &[l, h, d / h], DType::F32)?;
            let v = g.input("v", &[l, h, d / h], DType::F32)?;
            let y = g.attention(q, k, v, AttentionOptions::default())?;
            g.output(y)?;
            Some(time_graph(ctx, &g, c.attention_repeats).await?)
        } else {
            None
        };
        // The usual FFT figure of merit, 5·N·log2(N) for the N = L·d point 2-D transform.
        let n = (l * d) as f64;
        rows.push(serde_json::json!({
            "len": l, "mix_us": mix_us, "mix_gflops_5nlogn": 5.0 * n * n.log2() / mix_us / 1e3,
            "mix_dft_us": dft_us, "dft_over_fft": dft_us.map(|t| t / mix_us),
            "mix_complex_us": complex_us, "complex_over_mix": complex_us / mix_us,
            "attention_us": attn_us, "attention_over_mix": attn_us.map(|a| a / mix_us),
        }));
    }
    Ok(serde_json::json!({
        "bench": "fft", "adapter": ctx.adapter().one_line(),
        "timing": if ctx.has(wgpu::Features::TIMESTAMP_QUERY) { "gpu timestamps" } else { "wall clock" },
        "hidden": d, "heads": h, "repeats": c.repeats, "attention_repeats": c.attention_repeats, "rows": rows,
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
    let ratio = |x: &serde_json::Value| x.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    s += &format!(
        "{:>7} {:>12} {:>16} {:>12} {:>8} {:>12} {:>8} {:>14} {:>10}\n",
        "L", "mixing us", "GFLOP/s 5NlogN", "dft us", "ratio", "complex us", "ratio", "attention us", "ratio"
    );
    for r in v["rows"].as_array().into_iter().flatten() {
        s += &format!(
            "{:>7} {:>12} {:>16} {:>12} {:>8} {:>12} {:>8} {:>14} {:>10}\n",
            r["len"].to_string(),
            f(&r["mix_us"]),
            f(&r["mix_gflops_5nlogn"]),
            f(&r["mix_dft_us"]),
            ratio(&r["dft_over_fft"]),
            f(&r["mix_complex_us"]),
            ratio(&r["complex_over_mix"]),
            f(&r["attention_us"]),
            ratio(&r["attention_over_mix"])
        );
    }
    s
}
