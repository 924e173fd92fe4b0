//! Rope family (shaders/rope.wgsl): rotary position embeddings, both pairings, with angles
//! built from exact 64-bit fixed-point turns (see the shader for the precision argument).

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered};
use crate::error::Result;
use crate::graph::{RopeMode, RopeParams};

/// Invocations per workgroup (one per pair), as in the shader.
pub const WORKGROUP: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Adjacent,
    Halves,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Adjacent => "rope_adjacent",
            Variant::Halves => "rope_halves",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    pairs: u32,
    heads: u32,
    half_d: u32,
    slot: u32,
    r: [u32; 2],
    c: [u32; 2],
}

/// `v` in [0, 1) as a 64-bit binary fraction (lo, hi): round(v · 2^64), from f64 (53 bits).
pub fn fraction64(v: f64) -> [u32; 2] {
    let q = (v * 18446744073709551616.0) as u64; // saturates below 2^64 for v < 1
    [q as u32, (q >> 32) as u32]
}

/// The 64-bit fractions shaders/rope_angle.wgsl builds angles from, for head size `d`:
/// r = theta^(-2/d) < 1 (theta > 1), which the shader raises to the pair index, and
/// c = 1 / (2 pi).
pub fn turn_constants(theta: f32, d: usize) -> ([u32; 2], [u32; 2]) {
    let r = (-2.0 * (theta as f64).ln() / d as f64).exp();
    (fraction64(r), fraction64(1.0 / std::f64::consts::TAU))
}

/// Launch for rope over x [T, H, d] (checked by the builder).
pub fn lower(cx: &Cx, op: &RopeParams) -> Result<Lowered> {
    let RopeParams { mode, theta, slot } = *op;
    let (out, max_per_dim) = (cx.out, cx.max_per_dim());
    let (heads, d) = (out[1], out[2]);
    let pairs = out.iter().product::<usize>() / 2;
    as_u32("rope input", 2 * pairs)?;
    let half_d = d / 2;
    let (r, c) = turn_constants(theta, d);
    let params = Params {
        pairs: pairs as u32,
        heads: as_u32("rope heads", heads)?,
        half_d: as_u32("rope half head dim", half_d)?,
        slot,
        r,
        c,
    };
    let variant = match mode {
        RopeMode::Adjacent => Variant::Adjacent,
        RopeMode::Halves => Variant::Halves,
    };
    Ok(Dispatch::new(KernelKey::Rope(variant), &params, grid_1d(pairs as u64, WORKGROUP, max_per_dim)?).into())
}

/// The constants shaders/rope.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
