//! Sample family (shaders/sample.wgsl): per-row argmax, and token sampling with temperature,
//! top-k and top-p by threshold searches (no sort), one workgroup per row.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered};
use crate::error::Result;
use crate::graph::SampleOp;

/// Invocations per workgroup (one workgroup per row), as in the shader.
pub const WORKGROUP: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Argmax,
    Sample,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Argmax => "argmax",
            Variant::Sample => "sample",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    n: u32,
    top_k: u32,
    top_p: f32,
    temperature_slot: u32,
    seed_slot: u32,
    index_passes: u32,
}

/// Passes of the shader's 16-way index search over [0, n - 1]: base-16 digits of n - 1.
pub fn index_passes(n: usize) -> u32 {
    let (mut w, mut passes) = (n.saturating_sub(1), 0);
    while w > 0 {
        w /= 16;
        passes += 1;
    }
    passes
}

/// Launch for argmax or sample over x [..., n] (the input shape; checked by the builder).
pub fn lower(cx: &Cx, op: &SampleOp) -> Result<Lowered> {
    let (input, max_per_dim) = (cx.shape(0), cx.max_per_dim());
    let n = input[input.len() - 1];
    let total: usize = input.iter().product();
    as_u32("argmax/sample input", total)?;
    let rows = total / n;
    let mut params = Params {
        rows: rows as u32,
        n: n as u32,
        top_k: 0,
        top_p: 1.0,
        temperature_slot: 0,
        seed_slot: 0,
        index_passes: index_passes(n),
    };
    let variant = match *op {
        SampleOp::Argmax => Variant::Argmax,
        SampleOp::Draw { top_k, top_p, temperature_slot, seed_slot } => {
            params.top_k = top_k;
            params.top_p = top_p;
            params.temperature_slot = temperature_slot;
            params.seed_slot = seed_slot;
            Variant::Sample
        }
    };
    Ok(Dispatch::new(KernelKey::Sample(variant), &params, grid_1d(rows as u64, 1, max_per_dim)?).into())
}

/// The constants shaders/sample.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
