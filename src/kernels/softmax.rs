//! Softmax family (shaders/softmax.wgsl): softmax over the last dimension with a scale, a
//! causal mask and a per-key padding mask.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered};
use crate::error::Result;
use crate::graph::SoftmaxParams;
use crate::tensor::DType;

/// Invocations per workgroup (one workgroup per row), as in the shader.
pub const WORKGROUP: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Plain,
    /// With the padding mask as a second input.
    Masked,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Plain => "softmax",
            Variant::Masked => "softmax_mask",
        }
    }

    pub fn n_inputs(self) -> u32 {
        match self {
            Variant::Plain => 1,
            Variant::Masked => 2,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    n: u32,
    rows_per_matrix: u32,
    causal: u32,
    offset: u32,
    scale: f32,
    mask_f32: u32,
    _pad: u32,
}

/// Launch for a softmax node over `out` (the input's shape): one workgroup per row.
pub fn lower(cx: &Cx, sp: &SoftmaxParams) -> Result<Lowered> {
    let (inputs, out, max_per_dim) = (cx.inputs, cx.out, cx.max_per_dim());
    let n = out[out.len() - 1];
    let rows: usize = out[..out.len() - 1].iter().product();
    let rows_per_matrix = if out.len() >= 2 { out[out.len() - 2] } else { 1 };
    let params = Params {
        rows: as_u32("softmax rows", rows)?,
        n: as_u32("softmax row length", n)?,
        rows_per_matrix: as_u32("softmax rows", rows_per_matrix)?,
        causal: sp.causal as u32,
        offset: sp.offset,
        scale: sp.scale,
        mask_f32: (sp.mask && inputs[1].dtype == DType::F32) as u32,
        _pad: 0,
    };
    as_u32("softmax elements", rows * n)?;
    Ok(Dispatch::new(
        KernelKey::Softmax(if sp.mask { Variant::Masked } else { Variant::Plain }),
        &params,
        grid_1d(rows as u64, 1, max_per_dim)?,
    )
    .into())
}

/// The constants shaders/softmax.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
