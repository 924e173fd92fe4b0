//! Norm family (shaders/norm.wgsl): LayerNorm and RMSNorm over the last dimension, one
//! workgroup per row.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered};
use crate::error::Result;
use crate::graph::Norm;

/// Invocations per workgroup (one workgroup per row), as in the shader.
pub const WORKGROUP: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Inputs x, w, b.
    LayerNorm,
    /// Inputs x, w.
    RmsNorm,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::LayerNorm => "layer_norm",
            Variant::RmsNorm => "rms_norm",
        }
    }

    pub fn n_inputs(self) -> u32 {
        match self {
            Variant::LayerNorm => 3,
            Variant::RmsNorm => 2,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    n: u32,
    eps: f32,
}

/// Launch for a norm over the last dimension of `out` (the shape of x): one workgroup per
/// row, wrapped into y beyond the per-dimension limit.
pub fn lower(cx: &Cx, op: &Norm) -> Result<Lowered> {
    let (out, max_per_dim) = (cx.out, cx.max_per_dim());
    let (variant, eps, name) = match *op {
        Norm::Layer { eps } => (Variant::LayerNorm, eps, "layer_norm"),
        Norm::Rms { eps } => (Variant::RmsNorm, eps, "rms_norm"),
    };
    let n = out[out.len() - 1];
    let total: usize = out.iter().product();
    as_u32(&format!("{name} input"), total)?;
    let rows = total / n;
    let params =
        Params { rows: as_u32(&format!("{name} rows"), rows)?, n: as_u32(&format!("{name} row length"), n)?, eps };
    Ok(Dispatch::new(KernelKey::Norm(variant), &params, grid_1d(rows as u64, 1, max_per_dim)?).into())
}

/// The constants shaders/norm.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
