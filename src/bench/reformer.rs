//! A long-context Reformer forward pass: a synthetic model of google/reformer-enwik8's shape
//! (`ReformerConfig::enwik8`; seeded random weights, as speed does not depend on them) over
//! `len` byte ids, with our seeded rotations. Reports the time of the whole forward (GPU
//! timestamps where the adapter has them) and the plan's peak GPU memory.

use std::time::Instant;

use super::{time, values};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::model::reformer::{Reformer, ReformerConfig, Rotations};

/// The synthetic models `run` builds, by name.
pub const NAMES: &[&str] = &["enwik8"];

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// A name in [`NAMES`].
    pub synthetic: String,
    /// Tokens of the forward pass (up to the model's 65,536 positions).
    pub len: usize,
    /// Feed-forward chunk in rows (0: the whole feed-forward at once).
    pub ff_chunk: usize,
    pub repeats: usize,
}

/// Builds the model and times its forward pass.
pub async fn run(ctx: &Context, c: &Config) -> Result<serde_json::Value> {
    if !NAMES.contains(&c.synthetic.as_str()) {
        return Err(Error::Usage(format!(
            "no synthetic Reformer named '{}'; known: {}",
            c.synthetic,
            NAMES.join(", ")
        )));
    }
    let t0 = Instant::now();
    let model = Reformer::synthetic(ReformerConfig::enwik8(c.ff_chunk), 1)?;
    let rotations = Rotations::seeded(&model.config)?;
    let vocab = model.config.vocab_size as f32;
    // Byte ids 2..258 from the benchmark values (speed does not depend on them either).
    let ids: Vec<u32> = values(7, c.len).iter().map(|v| 2 + ((v + 1.0) / 2.0 * (vocab - 2.0)) as u32).collect();
    let (rg, mut exe) = model.prepare(ctx, &ids, &rotations)?;
    let build_s = t0.elapsed().as_secs_f64();
    let t = time(ctx, &mut exe, c.repeats).await?;
    let cfg = &model.config;
    Ok(serde_json::json!({
        "bench": "reformer", "adapter": ctx.adapter().one_line(), "model": c.synthetic,
        "timing": if t.gpu_us.is_some() { "gpu timestamps" } else { "wall clock" },
        "len": c.len, "padded_len": rg.padded, "layers": cfg.attn_layers.len(), "hidden": cfg.hidden_size,
        "heads": cfg.num_attention_heads, "hashes": cfg.num_hashes, "ff_chunk": c.ff_chunk, "repeats": c.repeats,
        "forward_us": t.us(), "wall_us": t.wall_us, "peak_bytes": exe.plan().peak_bytes(),
        "weight_bytes": exe.plan().pinned_bytes, "build_s": build_s,
        "tokens_per_s": c.len as f64 / (t.us() / 1e6),
    }))
}

/// The result as a table.
pub fn table(v: &serde_json::Value) -> String {
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    format!(
        "Reformer {} forward on {}: {} tokens (padded {}), {} layers, hidden {}, {} heads, {} hashes, FF chunk {}\n\
         {:.1} ms ({}, median of {}; wall {:.1} ms), {:.0} tokens/s; peak GPU memory {:.1} MiB \
         (pinned {:.1} MiB); model built and planned in {:.1} s\n",
        v["model"].as_str().unwrap_or("?"),
        v["adapter"].as_str().unwrap_or("?"),
        v["len"],
        v["padded_len"],
        v["layers"],
        v["hidden"],
        v["heads"],
        v["hashes"],
        v["ff_chunk"],
        f("forward_us") / 1e3,
        v["timing"].as_str().unwrap_or("?"),
        v["repeats"],
        f("wall_us") / 1e3,
        f("tokens_per_s"),
        f("peak_bytes") / (1u64 << 20) as f64,
        f("weight_bytes") / (1u64 << 20) as f64,
        f("build_s"),
    )
}
