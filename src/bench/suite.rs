//! `webformer bench --suite`: the benchmarks a user compares engines by, at fixed sizes, as
//! rows of one JSON schema (`scripts/bench_torch.py` prints the same rows for PyTorch, so the
//! two files compare row by row). Each row names its benchmark, its case (sizes), dtype and the
//! variant our lowering chose, and gives a median time; rates where they mean something.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::gpu::Context;

/// The schema's name and version, in every file.
pub const SCHEMA: &str = "webformer-bench/1";

/// Which benchmarks a suite runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Kernels,
    Attention,
    Lsh,
    Fft,
    Decode,
    All,
}

impl Suite {
    pub const NAMES: &'static str = "kernels, attention, lsh, fft, decode, all";

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "kernels" => Self::Kernels,
            "attention" => Self::Attention,
            "lsh" => Self::Lsh,
            "fft" => Self::Fft,
            "decode" => Self::Decode,
            "all" => Self::All,
            _ => return Err(Error::Setting { name: "--suite".into(), value: s.into(), expected: Self::NAMES.into() }),
        })
    }

    fn has(self, part: Suite) -> bool {
        self == Suite::All || self == part
    }
}

/// One row of the schema.
fn row(bench: &str, case: String, dtype: &str, variant: &str, us: f64) -> Value {
    json!({ "bench": bench, "case": case, "dtype": dtype, "variant": variant, "ms": us / 1e3 })
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn rows_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(|a| a.as_slice()).unwrap_or(&[])
}

async fn kernels(ctx: &Context, quick: bool, repeats: usize, out: &mut Vec<Value>) -> Result<()> {
    let sizes: &[usize] = if quick { &[256] } else { &[1024, 2048, 4096] };
    let gemm = super::gemm::run(ctx, sizes, &["nn", "nt"], repeats, 0).await?;
    for r in rows_of(&gemm, "results") {
        let n = &r["size"];
        let case = format!("{n}x{n}x{n} {}", r["layout"].as_str().unwrap_or("?"));
        let dtype = format!("f32 x {}", r["b"].as_str().unwrap_or("?"));
        let mut x = row("gemm", case, &dtype, r["kernel"].as_str().unwrap_or("?"), f(&r["ms"]) * 1e3);
        x["gflops"] = r["gflops"].clone();
        out.push(x);
    }
    let gemv = if quick {
        super::gemv::run_shapes(ctx, repeats, &[(576, 576)], &[]).await?
    } else {
        super::gemv::run(ctx, repeats).await?
    };
    for r in rows_of(&gemv, "rows").iter().filter(|r| r.get("skipped").is_none()) {
        let case = format!("m{} k{} n{}", r["m"], r["k"], r["n"]);
        let mut x =
            row("gemv", case, r["dtype"].as_str().unwrap_or("?"), r["kernel"].as_str().unwrap_or("?"), f(&r["us"]));
        x["gbps"] = r["gb_per_s"].clone();
        x["gflops"] = r["gflop_per_s"].clone();
        out.push(x);
    }
    Ok(())
}

async fn attention(ctx: &Context, quick: bool, repeats: usize, out: &mut Vec<Value>) -> Result<()> {
    let c = super::attention::Config {
        heads: 12,
        kv_heads: 12,
        head_dim: 64,
        prefill: if quick { vec![256] } else { vec![512, 2048, 8192] },
        decode: if quick { vec![256] } else { vec![1024, 8192] },
        composite_max: 0,
        splits: None,
        kv_f16: false,
        repeats,
    };
    let v = super::attention::run(ctx, &c).await?;
    for r in rows_of(&v, "prefill") {
        let mut x =
            row("attention_prefill", format!("L{} h12 d64 causal", r["len"]), "f32", "fused", f(&r["fused_us"]));
        x["gflops"] = r["fused_gflops"].clone();
        out.push(x);
    }
    for r in rows_of(&v, "decode") {
        let case = format!("cache{} h12 d64", r["cache_len"]);
        let mut x = row("attention_decode", case, "f32", &format!("split-keys x{}", r["splits"]), f(&r["us"]));
        x["gbps"] = r["kv_read_gbps"].clone();
        out.push(x);
    }
    Ok(())
}

async fn lsh(ctx: &Context, quick: bool, repeats: usize, out: &mut Vec<Value>) -> Result<()> {
    let c = super::lsh::Config {
        lens: if quick { vec![512] } else { vec![1024, 4096, 16384, 65536] },
        heads: 8,
        head_dim: 64,
        rounds: 4,
        chunk: 64,
        dense_max: if quick { 512 } else { 16384 },
        repeats,
        profile: false,
    };
    let v = super::lsh::run(ctx, &c).await?;
    for r in rows_of(&v, "rows") {
        let case = format!("L{} h8 d64 causal", r["len"]);
        let mut x = row("lsh_attention", case.clone(), "f32", "4 rounds, chunk 64", f(&r["lsh_us"]));
        x["peak_bytes"] = r["lsh_peak_bytes"].clone();
        out.push(x);
        if r.get("dense_us").is_some() {
            let mut x = row("dense_attention", case, "f32", "fused", f(&r["dense_us"]));
            x["peak_bytes"] = r["dense_peak_bytes"].clone();
            out.push(x);
        }
    }
    Ok(())
}

async fn fft(ctx: &Context, quick: bool, repeats: usize, out: &mut Vec<Value>) -> Result<()> {
    let lens = if quick { vec![512] } else { vec![512, 4096, 16384] };
    let attention_max = if quick { 512 } else { 16384 };
    // The DFT-as-matmul path too, up to 4096 (its [L, 2L] matrix is 128 MiB there).
    let dft_max = if quick { 512 } else { 4096 };
    let c = super::fft::Config {
        lens,
        hidden: 768,
        heads: 12,
        repeats,
        attention_max,
        dft_max,
        attention_repeats: repeats,
    };
    let v = super::fft::run(ctx, &c).await?;
    for r in rows_of(&v, "rows") {
        out.push(row("fourier_mix", format!("L{} d768", r["len"]), "f32", "real-input fft", f(&r["mix_us"])));
        if let Some(us) = r["mix_dft_us"].as_f64() {
            out.push(row("fourier_mix", format!("L{} d768", r["len"]), "f32", "dft-as-matmul", us));
        }
        // The attention FNet replaces, at the same shape (bidirectional: an encoder's).
        if r["attention_us"].is_number() {
            out.push(row("encoder_attention", format!("L{} h12 d64", r["len"]), "f32", "fused", f(&r["attention_us"])));
        }
    }
    Ok(())
}

async fn decode(ctx: &Context, quick: bool, repeats: usize, out: &mut Vec<Value>) -> Result<()> {
    let (prompt_tokens, decode_tokens) = if quick { (32, 16) } else { (128, 128) };
    let c = super::generate::Config { prompt_tokens, decode_tokens, repeats, profile_prefill: false };
    let v = super::generate::run(ctx, &super::generate::Source::Synthetic("smollm2-135m"), &c).await?;
    let (prefill, decode) = (f(&v["prefill_tokens_per_s"]), f(&v["decode_tokens_per_s"]));
    let dtype = "q4_1/q8_0";
    let mut x = row(
        "prefill",
        format!("smollm2-135m P{prompt_tokens}"),
        dtype,
        "synthetic",
        1e6 * prompt_tokens as f64 / prefill,
    );
    x["tokens_per_s"] = prefill.into();
    out.push(x);
    let mut x = row("decode", format!("smollm2-135m N{decode_tokens}"), dtype, "synthetic", 1e6 / decode);
    x["tokens_per_s"] = decode.into();
    x["dispatches_per_token"] = v["dispatches_per_token"].clone();
    out.push(x);
    Ok(())
}

/// Runs `suite` (`quick`: one small size per benchmark, for a smoke run) and returns the
/// document: schema, engine, adapter, timing source, date and the rows. `progress` sees the
/// document after each benchmark, so a run stopped by a time limit still leaves its rows.
pub async fn run(
    ctx: &Context,
    suite: Suite,
    quick: bool,
    repeats: usize,
    progress: &mut dyn FnMut(&Value) -> Result<()>,
) -> Result<Value> {
    let timing = if ctx.has(wgpu::Features::TIMESTAMP_QUERY) { "gpu timestamps" } else { "wall clock" };
    let unix_time =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut doc = json!({
        "schema": SCHEMA, "engine": "webformer", "adapter": ctx.adapter().one_line(), "timing": timing,
        "repeats": repeats, "quick": quick, "unix_time": unix_time, "rows": [],
    });
    let mut rows = Vec::new();
    for part in [Suite::Kernels, Suite::Attention, Suite::Lsh, Suite::Fft, Suite::Decode] {
        if !suite.has(part) {
            continue;
        }
        match part {
            Suite::Kernels => kernels(ctx, quick, repeats, &mut rows).await?,
            Suite::Attention => attention(ctx, quick, repeats, &mut rows).await?,
            Suite::Lsh => lsh(ctx, quick, repeats, &mut rows).await?,
            Suite::Fft => fft(ctx, quick, repeats, &mut rows).await?,
            Suite::Decode | Suite::All => decode(ctx, quick, repeats, &mut rows).await?,
        }
        doc["rows"] = rows.clone().into();
        progress(&doc)?;
    }
    Ok(doc)
}

/// The rows as a table.
pub fn table(v: &Value) -> String {
    let mut s = format!(
        "{} on {} ({})\n",
        v["engine"].as_str().unwrap_or("?"),
        v["adapter"].as_str().unwrap_or("?"),
        v["timing"].as_str().unwrap_or("?")
    );
    s += &format!("{:<18} {:<26} {:<10} {:<20} {:>11} {:>10}\n", "bench", "case", "dtype", "variant", "ms", "rate");
    for r in rows_of(v, "rows") {
        let rate = if let Some(g) = r["gflops"].as_f64() {
            format!("{g:.1} GFLOP/s")
        } else if let Some(t) = r["tokens_per_s"].as_f64() {
            format!("{t:.1} tok/s")
        } else if let Some(b) = r["gbps"].as_f64() {
            format!("{b:.1} GB/s")
        } else {
            String::new()
        };
        let t = |k: &str| r[k].as_str().unwrap_or("?").to_string();
        s += &format!(
            "{:<18} {:<26} {:<10} {:<20} {:>11.3} {:>10}\n",
            t("bench"),
            t("case"),
            t("dtype"),
            t("variant"),
            f(&r["ms"]),
            rate
        );
    }
    s
}

/// Writes the document to `path`, naming it in the error.
pub fn write(v: &Value, path: &Path) -> Result<()> {
    std::fs::write(path, format!("{v:#}\n"))
        .map_err(|e| Error::Usage(format!("cannot write the benchmark results to {}: {e}", path.display())))
}
