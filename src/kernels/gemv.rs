//! GEMV family (shaders/gemv.wgsl and its f16 / subgroup modules): y = act(x · Wᵀ + bias) for
//! one row x, the decode step of a transformer, with W in f32, f16, Q8_0 or Q4_1.
//!
//! Four modules share one kernel body: `gemv` (f32 and quantized W, workgroup-memory
//! reduction), `gemv_subgroup` (the same, reduced with subgroupAdd), `gemv_f16` and
//! `gemv_f16_subgroup`. The subgroup ones need SUBGROUP, the f16 ones SHADER_F16; the choice is
//! made here from the device's features (or forced by `MatmulImpl::GemvShared`).
//!
//! CPU adapters get a kernel of their own, shaders/gemv_lanes.wgsl (`Reduce::Lanes`: a row
//! per lane, x shared by subgroup broadcasts, no barrier), for Q4_1, Q8_0 and f32 W with K a
//! multiple of 32, plain or fused; see `lanes_fit` for when and why.

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
    /// No reduction: each lane of an 8-lane workgroup owns whole rows and x comes by subgroup
    /// broadcasts (shaders/gemv_lanes.wgsl, for CPU adapters; needs SUBGROUP with 8+ lanes).
    Lanes,
}

/// Which GEMV kernels a launch may use: `Auto` the best for the adapter (lanes on CPU adapters
/// where they fit, else the subgroup tree where the device has SUBGROUP, else the portable
/// tree), or one tree forced (`MatmulImpl::GemvShared` / `GemvSubgroup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Auto,
    Shared,
    Subgroup,
}

/// Weights the lanes kernel reads, in the order of its entry points.
const LANE_WEIGHTS: [Weight; 3] = [Weight::F32x4, Weight::Q8_0, Weight::Q4_1];

/// Rows per lanes workgroup: 8 lanes x LR = 4 rows each (as in gemv_lanes.wgsl).
pub const LANE_ROWS: u32 = 32;

/// True where `lower` / `lower_fused` choose the lanes kernel for a `weight` of rows of `k`:
/// on CPU adapters with SUBGROUP and subgroups of at least 8 lanes (the broadcast sources), for
/// Q4_1, Q8_0 and f32 with k a multiple of 32 (one block of x per broadcast), not in the
/// browser build (naga there cannot take `enable subgroups`). Measured on lavapipe
/// (BENCHMARKS.md "GEMV on CPU adapters"): there a storage load costs about the same per
/// 32-bit component whatever the address and a workgroup barrier about 3 us per workgroup,
/// so sharing x by broadcasts and dropping the tree reduction wins; on GPUs the row-per-lane
/// layout would read W uncoalesced, so they keep the tree kernels.
pub fn lanes_fit(ctx: &Context, weight: Weight, k: usize) -> bool {
    let [min, max] = ctx.adapter().subgroup_size;
    !cfg!(target_arch = "wasm32")
        && ctx.adapter().device_type == "Cpu"
        && ctx.has(wgpu::Features::SUBGROUP)
        && super::gemm::subgroup_sizes_fit(min, max)
        && LANE_WEIGHTS.contains(&weight)
        && k.is_multiple_of(32)
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
            (_, Reduce::Lanes) => "gemv_lanes",
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
            (weight, Lanes, _) => Fused { weight, reduce: Lanes, swiglu: false, rms: false }.entry_point(),
        }
    }

    /// x and W, then the bias when there is one. A lanes variant is the fused lanes kernel
    /// with no fusion and its six reads (`lower` launches it as that `KernelKey::GemvFused`).
    pub fn n_inputs(self) -> u32 {
        match self.reduce {
            Reduce::Lanes => 6,
            _ => 2 + self.bias as u32,
        }
    }
}

/// The fused GEMV (shaders/gemv_fused.wgsl). Bias and residual are switched by params; the
/// SwiGLU pair and the RMSNorm prologue, which touch the inner loop, by the module (compile-time
/// constants: runtime branches there made lavapipe's fused GEMV 1.4 to 2 times slower, measured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fused {
    pub weight: Weight,
    pub reduce: Reduce,
    pub swiglu: bool,
    pub rms: bool,
}

/// Weight layouts, in the order of the entry point names' tables.
const WEIGHTS: [Weight; 6] = [Weight::F32x4, Weight::F32, Weight::F16x4, Weight::F16, Weight::Q8_0, Weight::Q4_1];

impl Fused {
    /// Every fused variant, for tests that walk them all.
    pub fn all() -> Vec<Fused> {
        let tf = [false, true];
        let tree = WEIGHTS.iter().flat_map(|&w| [(w, Reduce::Shared), (w, Reduce::Subgroup)]);
        let lanes = LANE_WEIGHTS.iter().map(|&w| (w, Reduce::Lanes));
        let mut all = Vec::new();
        for (weight, reduce) in tree.chain(lanes) {
            for (swiglu, rms) in tf.iter().flat_map(|&s| tf.map(|r| (s, r))) {
                all.push(Fused { weight, reduce, swiglu, rms });
            }
        }
        all
    }

    pub fn family(self) -> &'static str {
        match (self.weight.is_f16(), self.reduce, self.swiglu, self.rms) {
            (_, Reduce::Lanes, false, false) => "gemv_lanes",
            (_, Reduce::Lanes, false, true) => "gemv_lanes_rms",
            (_, Reduce::Lanes, true, false) => "gemv_lanes_swiglu",
            (_, Reduce::Lanes, true, true) => "gemv_lanes_swiglu_rms",
            (false, Reduce::Shared, false, false) => "gemv_fused",
            (false, Reduce::Shared, false, true) => "gemv_fused_rms",
            (false, Reduce::Shared, true, false) => "gemv_fused_swiglu",
            (false, Reduce::Shared, true, true) => "gemv_fused_swiglu_rms",
            (false, Reduce::Subgroup, false, false) => "gemv_fused_subgroup",
            (false, Reduce::Subgroup, false, true) => "gemv_fused_rms_subgroup",
            (false, Reduce::Subgroup, true, false) => "gemv_fused_swiglu_subgroup",
            (false, Reduce::Subgroup, true, true) => "gemv_fused_swiglu_rms_subgroup",
            (true, Reduce::Shared, false, false) => "gemv_f16_fused",
            (true, Reduce::Shared, false, true) => "gemv_f16_fused_rms",
            (true, Reduce::Shared, true, false) => "gemv_f16_fused_swiglu",
            (true, Reduce::Shared, true, true) => "gemv_f16_fused_swiglu_rms",
            (true, Reduce::Subgroup, false, false) => "gemv_f16_fused_subgroup",
            (true, Reduce::Subgroup, false, true) => "gemv_f16_fused_rms_subgroup",
            (true, Reduce::Subgroup, true, false) => "gemv_f16_fused_swiglu_subgroup",
            (true, Reduce::Subgroup, true, true) => "gemv_f16_fused_swiglu_rms_subgroup",
        }
    }

    pub fn entry_point(self) -> &'static str {
        const SHARED: [&str; 6] = [
            "gemv_f32x4_fused",
            "gemv_f32_fused",
            "gemv_f16x4_fused",
            "gemv_f16_fused",
            "gemv_q8_0_fused",
            "gemv_q4_1_fused",
        ];
        const SUBGROUP: [&str; 6] = [
            "gemv_f32x4_sg_fused",
            "gemv_f32_sg_fused",
            "gemv_f16x4_sg_fused",
            "gemv_f16_sg_fused",
            "gemv_q8_0_sg_fused",
            "gemv_q4_1_sg_fused",
        ];
        const LANES: [&str; 3] = ["gemv_lanes_f32x4", "gemv_lanes_q8_0", "gemv_lanes_q4_1"];
        let i = WEIGHTS.iter().position(|&w| w == self.weight).unwrap_or(0);
        match self.reduce {
            Reduce::Shared => SHARED[i],
            Reduce::Subgroup => SUBGROUP[i],
            Reduce::Lanes => LANES[LANE_WEIGHTS.iter().position(|&w| w == self.weight).unwrap_or(0)],
        }
    }

    /// x, W, bias, up weight, RMSNorm gain, residual (unused ones bound to x or W).
    pub fn n_inputs(self) -> u32 {
        6
    }

    /// The `partial_*` function of gemv.wgsl / gemv_f16.wgsl for this layout.
    fn partial(self) -> &'static str {
        match self.weight {
            Weight::F32x4 => "partial_f32x4",
            Weight::F32 => "partial_f32",
            Weight::F16x4 => "partial_f16x4",
            Weight::F16 => "partial_f16",
            Weight::Q8_0 => "partial_q8_0",
            Weight::Q4_1 => "partial_q4_1",
        }
    }
}

/// What a fused GEMV adds to y = x · Wᵀ.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fusion {
    pub bias: bool,
    pub act: Option<Activation>,
    pub swiglu: bool,
    /// RMSNorm prologue with this eps.
    pub rms: Option<f32>,
    pub residual: bool,
}

/// Bits of the fused GEMV's `flags`, as in gemv_fused.wgsl (SwiGLU and RMSNorm are the
/// module's constants instead).
const FUSE_RESIDUAL: u32 = 1;
const FUSE_BIAS: u32 = 2;

impl Fusion {
    fn flags(self) -> u32 {
        (self.residual as u32 * FUSE_RESIDUAL) | (self.bias as u32 * FUSE_BIAS)
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
    flags: u32,
    eps: f32,
}

/// The launch for y [n] = act(x [k] · W[n, k]ᵀ + bias) with W of `dtype`, by the kernel `pick`
/// allows.
pub fn lower(
    ctx: &Context,
    dtype: DType,
    k: usize,
    n: usize,
    bias: bool,
    act: Option<Activation>,
    pick: Pick,
) -> Result<Dispatch> {
    let (weight, reduce) = layout(ctx, dtype, k, n, pick)?;
    if reduce == Reduce::Lanes {
        // The lanes kernel has one entry point per weight for plain and fused launches alike;
        // a plain GEMV is a fused one with only bias and activation (unused reads bound to x).
        use super::Slot::Input;
        let b = if bias { Input(2) } else { Input(0) };
        let f = Fusion { bias, act, ..Default::default() };
        return lower_fused(ctx, dtype, k, n, f, pick, [Input(0), Input(1), b, Input(1), Input(0), Input(0)]);
    }
    let fusion = Fusion { act, ..Default::default() };
    let (params, workgroups) = params(ctx, dtype, weight, k, n, fusion, ROWS)?;
    Ok(Dispatch::new(KernelKey::Gemv(Variant { weight, reduce, bias }), &params, workgroups))
}

/// The fused launch: y [n] = act(rms_norm(x) · Wᵀ + bias) (or silu(rms_norm(x) · Wᵀ) ·
/// (rms_norm(x) · Upᵀ) with `f.swiglu`) + residual. The reads are x, W, then the bias, up,
/// gain and residual slots the caller names (unused ones: pass x's or W's slot).
pub fn lower_fused(
    ctx: &Context,
    dtype: DType,
    k: usize,
    n: usize,
    f: Fusion,
    pick: Pick,
    reads: [super::Slot; 6],
) -> Result<Dispatch> {
    let (weight, reduce) = layout(ctx, dtype, k, n, pick)?;
    // A SwiGLU workgroup computes half as many outputs (its other rows are the up weight's);
    // a lanes workgroup computes LANE_ROWS, SwiGLU or not (its lanes read both weights).
    let per_group = match reduce {
        Reduce::Lanes => LANE_ROWS,
        _ if f.swiglu => ROWS / 2,
        _ => ROWS,
    };
    let (params, workgroups) = params(ctx, dtype, weight, k, n, f, per_group)?;
    let key = Fused { weight, reduce, swiglu: f.swiglu, rms: f.rms.is_some() };
    let d = Dispatch::new(KernelKey::GemvFused(key), &params, workgroups);
    Ok(d.bind(&[super::Slot::Output], &reads))
}

/// The weight layout and reduction for a GEMV, or the error that says why there is none.
fn layout(ctx: &Context, dtype: DType, k: usize, n: usize, pick: Pick) -> Result<(Weight, Reduce)> {
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
    let subgroups = ctx.has(wgpu::Features::SUBGROUP);
    let reduce = match pick {
        Pick::Auto if lanes_fit(ctx, weight, k) => Reduce::Lanes,
        Pick::Auto | Pick::Subgroup if subgroups => Reduce::Subgroup,
        Pick::Subgroup => {
            return Err(Error::Feature {
                what: format!("the subgroup GEMV (MatmulImpl::GemvSubgroup) for a weight [{n}, {k}]"),
                feature: "SUBGROUP",
                adapter: ctx.adapter().name.clone(),
            })
        }
        Pick::Auto | Pick::Shared => Reduce::Shared,
    };
    Ok((weight, reduce))
}

/// The params and grid of a GEMV with `per_group` output rows per workgroup.
fn params(
    ctx: &Context,
    dtype: DType,
    weight: Weight,
    k: usize,
    n: usize,
    f: Fusion,
    per_group: u32,
) -> Result<(Params, [u32; 3])> {
    // Element indices of W are formed in u32 (saturating: a 32-bit host must not wrap).
    let elements = as_u32("gemv weight elements", n.saturating_mul(k))? as usize;
    let blocks = elements / QK;
    let (d_word, m_word) = quant::plane_words(dtype, blocks);
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    let workgroups = grid_1d(n as u64, per_group, max)?;
    let params = Params {
        n: as_u32("gemv rows", n)?,
        k: as_u32("gemv k", k)?,
        units: as_u32("gemv units", k / weight.unit())?,
        act: act_code(f.act),
        d_word: as_u32("gemv weight words", d_word)?,
        m_word: as_u32("gemv weight words", m_word)?,
        groups_x: workgroups[0],
        flags: f.flags(),
        eps: f.rms.unwrap_or(0.0),
    };
    Ok((params, workgroups))
}

/// The constants the GEMV shaders share with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[
        ("WG", WORKGROUP as u64),
        ("ROWS", ROWS as u64),
        ("FUSE_RESIDUAL", FUSE_RESIDUAL as u64),
        ("FUSE_BIAS", FUSE_BIAS as u64),
    ])
}

/// The f16 weight loads of the plain GEMV.
pub const F16_PLAIN_IO: &str = "
enable f16;

// f16 W with K % 4 == 0: rows start on 8-byte boundaries, one vec4<f16> per unit.
@group(0) @binding(4) var<storage, read> wh4: array<vec4<f16>>;
// f16 W with any K: one element per unit.
@group(0) @binding(4) var<storage, read> wh: array<f16>;
fn ld_wh4(up: bool, i: u32) -> vec4<f16> {
    return wh4[i];
}

fn ld_wh(up: bool, i: u32) -> f16 {
    return wh[i];
}
";

/// The f16 weight loads of the fused GEMV: virtual rows past ROWS/2 of a SwiGLU pair read the
/// up weight (binding 6, as in gemv_fused.wgsl).
pub const F16_FUSED_IO: &str = "
enable f16;

// f16 W with K % 4 == 0: rows start on 8-byte boundaries, one vec4<f16> per unit.
@group(0) @binding(4) var<storage, read> wh4: array<vec4<f16>>;
// f16 W with any K: one element per unit.
@group(0) @binding(4) var<storage, read> wh: array<f16>;
@group(0) @binding(6) var<storage, read> wuh4: array<vec4<f16>>;
@group(0) @binding(6) var<storage, read> wuh: array<f16>;

fn ld_wh4(up: bool, i: u32) -> vec4<f16> {
    if (up) {
        return wuh4[i];
    }
    return wh4[i];
}

fn ld_wh(up: bool, i: u32) -> f16 {
    if (up) {
        return wuh[i];
    }
    return wh[i];
}
";

/// The fused entry points of the modules whose weights are `f16` or not, with `reduce`.
fn fused_entries(f16: bool, reduce: Reduce) -> String {
    let mut src = String::new();
    for f in Fused::all().into_iter().filter(|f| f.weight.is_f16() == f16 && f.reduce == reduce && !f.swiglu && !f.rms)
    {
        let (args, reduced) = match reduce {
            // Written out in shaders/gemv_lanes.wgsl.
            Reduce::Lanes => continue,
            Reduce::Shared => ("", "reduce_shared(acc, lid)"),
            Reduce::Subgroup => (
                ",\n    @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32",
                "reduce_subgroup(acc, lid, lane, sg)",
            ),
        };
        src.push_str(&format!(
            "\n@compute @workgroup_size(WG)\nfn {}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32{args}) {{\n    let row0 = first_row(wid);\n    let acc = {}(row0, lid);\n    keep_sumsq(lid);\n    fused_store(row0, lid, {reduced});\n}}\n",
            f.entry_point(),
            f.partial()
        ));
    }
    src
}

/// The SwiGLU / RMSNorm switches of the fused modules (gemv_fused.wgsl reads them).
pub const SPEC_PLAIN: &str = "const FUSED_SWIGLU: bool = false;\nconst FUSED_RMS: bool = false;\n";
pub const SPEC_PLAIN_RMS: &str = "const FUSED_SWIGLU: bool = false;\nconst FUSED_RMS: bool = true;\n";
pub const SPEC_SWIGLU: &str = "const FUSED_SWIGLU: bool = true;\nconst FUSED_RMS: bool = false;\n";
pub const SPEC_SWIGLU_RMS: &str = "const FUSED_SWIGLU: bool = true;\nconst FUSED_RMS: bool = true;\n";

/// Entry points of the fused modules of f32 / quantized weights, workgroup-memory reduction.
pub fn wgsl_fused_f32_shared() -> String {
    fused_entries(false, Reduce::Shared)
}

/// Entry points of the fused modules of f32 / quantized weights, subgroup reduction.
pub fn wgsl_fused_f32_subgroup() -> String {
    fused_entries(false, Reduce::Subgroup)
}

/// Entry points of the fused modules of f16 weights, workgroup-memory reduction.
pub fn wgsl_fused_f16_shared() -> String {
    fused_entries(true, Reduce::Shared)
}

/// Entry points of the fused modules of f16 weights, subgroup reduction.
pub fn wgsl_fused_f16_subgroup() -> String {
    fused_entries(true, Reduce::Subgroup)
}
