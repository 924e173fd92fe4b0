//! Benchmarks: medians of repeated runs, timed by GPU timestamps where the adapter has them
//! (wall clock otherwise). Native only (`std::time::Instant` does not exist on wasm32).
//! Each `webformer bench <name>` subcommand is a function here returning a JSON value.

pub mod attention;
pub mod dispatch;
pub mod fft;
pub mod gemm;
pub mod gemv;
pub mod generate;
pub mod load;
pub mod lsh;
pub mod ops;
pub mod reformer;
pub mod suite;

use std::time::Instant;

use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;

/// Median times of one plan, run `repeats` times after one warm-up run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    /// GPU time of the single compute pass, from timestamps (None without TIMESTAMP_QUERY).
    pub gpu_us: Option<f64>,
    /// From `run()` to the GPU going idle, on the host clock.
    pub wall_us: f64,
    /// Recording and submitting alone.
    pub submit_us: f64,
}

impl Timing {
    /// The best figure available: GPU time, else wall time.
    pub fn us(&self) -> f64 {
        self.gpu_us.unwrap_or(self.wall_us)
    }
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Times an executor whose inputs are already set.
pub async fn time(ctx: &Context, exe: &mut GpuExecutor, repeats: usize) -> Result<Timing> {
    exe.run()?;
    ctx.sync().await?;
    let (mut submit, mut wall, mut gpu) = (Vec::new(), Vec::new(), Vec::new());
    let timestamps = ctx.has(wgpu::Features::TIMESTAMP_QUERY);
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        exe.run()?;
        let t1 = Instant::now();
        ctx.sync().await?;
        submit.push((t1 - t0).as_secs_f64() * 1e6);
        wall.push(t0.elapsed().as_secs_f64() * 1e6);
        if timestamps {
            gpu.push(exe.run_timed().await? / 1e3);
        }
    }
    Ok(Timing {
        gpu_us: if gpu.is_empty() { None } else { Some(median(&mut gpu)) },
        wall_us: median(&mut wall),
        submit_us: median(&mut submit),
    })
}

/// Deterministic values in [-1, 1) for benchmark inputs and weights (speed does not depend on
/// the values; xorshift keeps them reproducible without a dependency).
pub fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
