//! GEMV family (shaders/gemv.wgsl and its f16 / subgroup modules): y = act(x · Wᵀ + bias) for
//! one row x, the decode step of a transformer, with W in f32, f16, Q8_0 or Q4_1.
//!
//! Four modules share one kernel body: `gemv` (f32 and quantized W, workgroup-memory
//! reduction), `gemv_subgroup` (the same, reduced with subgroupAdd), `gemv_f16` and
//! `gemv_f16_subgroup`. The subgroup ones need SUBGROUP, the f16 ones SHADER_F16; the choice is
//! made here from the device's features (or forced by `MatmulImpl::GemvShared`).

use bytemuck::{Pod, Zeroable};

use super::matmul::act_code;
use super::{as_u32, grid_1d, quant, Dispatch, KernelKey};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::Activation;
use crate::tensor::{DType, QK};

/// Invocations per workgroup and output rows per workgroup, as in the shader.
pub const WORKGROUP: u32 = 64;
pub const ROWS: u32 = 4;

/// How W is read: its dtype, and for f32/f16 whether rows are vec4-aligned (K % 4 == 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weight {
    F32,
    F32x4,
    F16,
    F16x4,
    Q8_0,
    Q4_1,
}

impl Weight {
    /// The layout for a `dtype` weight with rows of `k` elements, if GEMV reads that dtype.
    pub fn of(dtype: DType, k: usize) -> Option<Self> {
        let vec4 = k.is_multiple_of(4);
        Some(match dtype {
            DType::F32 if vec4 => Weight::F32x4,
            DType::F32 => Weight::F32,
            DType::F16 if vec4 => Weight::F16x4,
            DType::F16 => Weight::F16,
            DType::Q8_0 => Weight::Q8_0,
            DType::Q4_1 => Weight::Q4_1,
            DType::U32 => return None,
        })
    }

    /// Elements of a row covered by one unit of work (one load of W per row).
    fn unit(self) -> usize {
        match self {
            Weight::F32 | Weight::F16 => 1,
            Weight::F32x4 | Weight::F16x4 => 4,
            Weight::Q8_0 => 16,
            Weight::Q4_1 => 32,
        }
    }

    fn is_f16(self) -> bool {
        matches!(self, Weight::F16 | Weight::F16x4)
    }
}

/// How the per-invocation partial sums are added up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// A tree in workgroup memory: works everywhere.
    Shared,
    /// subgroupAdd, then one partial per subgroup in workgroup memory (needs SUBGROUP).
    Subgroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub weight: Weight,
    pub reduce: Reduce,
    pub bias: bool,
}

impl Variant {
    /// The shader module (file stem) holding this variant's entry point.
    pub fn family(self) -> &'static str {
        match (self.weight.is_f16(), self.reduce) {
            (false, Reduce::Shared) => "gemv",
            (false, Reduce::Subgroup) => "gemv_subgroup",
            (true, Reduce::Shared) => "gemv_f16",
            (true, Reduce::Subgroup) => "gemv_f16_subgroup",
        }
    }

    pub fn entry_point(self) -> &'static str {
        use Reduce::*;
        use Weight::*;
        match (self.weight, self.reduce, self.bias) {
            (F32x4, Shared, false) => "gemv_f32x4",
            (F32x4, Shared, true) => "gemv_f32x4_bias",
            (F32, Shared, false) => "gemv_f32",
            (F32, Shared, true) => "gemv_f32_bias",
            (F16x4, Shared, false) => "gemv_f16x4",
            (F16x4, Shared, true) => "gemv_f16x4_bias",
            (F16, Shared, false) => "gemv_f16",
            (F16, Shared, true) => "gemv_f16_bias",
            (Q8_0, Shared, false) => "gemv_q8_0",
            (Q8_0, Shared, true) => "gemv_q8_0_bias",
            (Q4_1, Shared, false) => "gemv_q4_1",
            (Q4_1, Shared, true) => "gemv_q4_1_bias",
            (F32x4, Subgroup, false) => "gemv_f32x4_sg",
            (F32x4, Subgroup, true) => "gemv_f32x4_sg_bias",
            (F32, Subgroup, false) => "gemv_f32_sg",
            (F32, Subgroup, true) => "gemv_f32_sg_bias",
            (F16x4, Subgroup, false) => "gemv_f16x4_sg",
            (F16x4, Subgroup, true) => "gemv_f16x4_sg_bias",
            (F16, Subgroup, false) => "gemv_f16_sg",
            (F16, Subgroup, true) => "gemv_f16_sg_bias",
            (Q8_0, Subgroup, false) => "gemv_q8_0_sg",
            (Q8_0, Subgroup, true) => "gemv_q8_0_sg_bias",
            (Q4_1, Subgroup, false) => "gemv_q4_1_sg",
            (Q4_1, Subgroup, true) => "gemv_q4_1_sg_bias",
        }
    }

    /// x and W, then the bias when there is one.
    pub fn n_inputs(self) -> u32 {
        2 + self.bias as u32
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    k: u32,
    units: u32,
    act: u32,
    d_word: u32,
    m_word: u32,
    groups_x: u32,
}

/// The launch for y [n] = act(x [k] · W[n, k]ᵀ + bias) with W of `dtype`. `prefer_subgroups`
/// picks the subgroup reduction when the device has SUBGROUP; without it (or when false) the
/// workgroup-memory tree is used.
pub fn lower(
    ctx: &Context,
    dtype: DType,
    k: usize,
    n: usize,
    bias: bool,
    act: Option<Activation>,
    prefer_subgroups: bool,
) -> Result<Dispatch> {
    let Some(weight) = Weight::of(dtype, k) else {
        return Err(Error::DType {
            what: "gemv: the weight".into(),
            expected: "f32, f16, q8_0 or q4_1".into(),
            got: dtype.to_string(),
        });
    };
    if weight.is_f16() && !ctx.has(wgpu::Features::SHADER_F16) {
        return Err(Error::Feature {
            what: format!("gemv with an f16 weight [{n}, {k}]"),
            feature: "SHADER_F16",
            adapter: ctx.adapter().name.clone(),
        });
    }
    if dtype.is_quantized() && !k.is_multiple_of(QK) {
        return Err(Error::Shape {
            op: "gemv".into(),
            detail: format!("a {dtype} weight needs rows that are whole blocks of {QK}, got k = {k}"),
        });
    }
    let reduce = if prefer_subgroups && ctx.has(wgpu::Features::SUBGROUP) { Reduce::Subgroup } else { Reduce::Shared };
    // Element indices of W are formed in u32 (saturating: a 32-bit host must not wrap).
    let elements = as_u32("gemv weight elements", n.saturating_mul(k))? as usize;
    let blocks = elements / QK;
    let (d_word, m_word) = quant::plane_words(dtype, blocks);
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    let workgroups = grid_1d(n as u64, ROWS, max)?;
    let params = Params {
        n: as_u32("gemv rows", n)?,
        k: as_u32("gemv k", k)?,
        units: as_u32("gemv units", k / weight.unit())?,
        act: act_code(act),
        d_word: as_u32("gemv weight words", d_word)?,
        m_word: as_u32("gemv weight words", m_word)?,
        groups_x: workgroups[0],
    };
    Ok(Dispatch::new(KernelKey::Gemv(Variant { weight, reduce, bias }), &params, workgroups))
}

/// The constants the GEMV shaders share with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64), ("ROWS", ROWS as u64)])
}
