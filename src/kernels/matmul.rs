//! Matmul family (shaders/matmul.wgsl): the straightforward batched kernel with bias and
//! activation epilogues, and the choice of matmul kernel for a graph node (this one, the
//! baseline, or the tuned GEMM of `kernels::gemm`).

use bytemuck::{Pod, Zeroable};

use super::{as_u32, elementwise, gemm, gemv, grid_1d, qmatmul, Cx, Dispatch, KernelKey, Lowered, Operand, Slot};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::{Activation, Elementwise, MatmulImpl, MatmulParams};
use crate::tensor::DType;

/// Output tile edge of one workgroup, as in the shader.
pub const TILE: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// One invocation per output element.
    Naive { bias: bool },
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Naive { bias: false } => "matmul_naive",
            Variant::Naive { bias: true } => "matmul_naive_bias",
        }
    }

    pub fn n_inputs(self) -> u32 {
        match self {
            Variant::Naive { bias } => 2 + bias as u32,
        }
    }
}

/// The ACT_* code of activation.wgsl.
pub fn act_code(act: Option<Activation>) -> u32 {
    match act {
        None => 0,
        Some(Activation::GeluErf) => 1,
        Some(Activation::GeluTanh) => 2,
        Some(Activation::Silu) => 3,
        Some(Activation::Relu) => 4,
        Some(Activation::Tanh) => 5,
    }
}

/// Picks the matmul kernel for a node: by b's dtype, the shape and the adapter's features.
/// One arm per kernel family; more specific kernels (e.g. for single-row shapes or quantized
/// b) go before the general GEMM arm.
pub fn lower(cx: &Cx, op: &MatmulParams) -> Result<Lowered> {
    if !op.is_fused() {
        return pick(cx.ctx, op, cx.inputs, cx.out).map(Lowered::from);
    }
    match fused_gemv(cx, op)? {
        Some(d) => Ok(d.into()),
        None => composite(cx, op),
    }
}

/// The GEMV kernels `imp` allows; None: it forces a kernel that is not a GEMV.
fn gemv_pick(imp: MatmulImpl) -> Option<gemv::Pick> {
    match imp {
        MatmulImpl::Auto => Some(gemv::Pick::Auto),
        MatmulImpl::GemvShared => Some(gemv::Pick::Shared),
        MatmulImpl::GemvSubgroup => Some(gemv::Pick::Subgroup),
        _ => None,
    }
}

/// A fused linear layer of one row (decode) is one fused GEMV launch, whatever it fuses. None:
/// more rows, or a kernel forced that is not a GEMV.
fn fused_gemv(cx: &Cx, op: &MatmulParams) -> Result<Option<Dispatch>> {
    let (x, w) = (cx.inputs[0], cx.inputs[1]);
    let k = x.shape[x.shape.len() - 1];
    let n = cx.out[cx.out.len() - 1];
    let rows: usize = cx.out[..cx.out.len() - 1].iter().product();
    let Some(pick) = gemv_pick(op.imp) else { return Ok(None) };
    if rows != 1 {
        return match pick {
            gemv::Pick::Auto => Ok(None),
            _ => Err(Error::Usage(format!(
                "MatmulImpl::{:?} needs one row (x [1, k]), got x {:?} for a fused linear layer",
                op.imp, x.shape
            ))),
        };
    }
    let (bias, up, gain, residual) = op.slots();
    let (sx, sw) = (Slot::Input(0), Slot::Input(1));
    let or = |i: Option<usize>, unused: Slot| i.map(Slot::Input).unwrap_or(unused);
    let reads = [sx, sw, or(bias, sx), or(up, sw), or(gain, sx), or(residual, sx)];
    let f = gemv::Fusion { bias: op.bias, act: op.act, swiglu: op.swiglu, rms: op.rms, residual: op.residual };
    gemv::lower_fused(cx.ctx, w.dtype, k, n, f, pick, reads).map(Some)
}

/// A fused linear layer of several rows (prefill), or under a forced GEMM kernel: the plain
/// kernels one after another through scratch buffers (RMSNorm, the product(s), the SwiGLU
/// product, the residual add). Correct, not fused: the GEMM, subgroup GEMM and quantized
/// matmul kernels have no prologue or second weight, and a prompt's launches are few next to
/// the work each does, so their fusion waits for a measured need.
fn composite(cx: &Cx, op: &MatmulParams) -> Result<Lowered> {
    let (bias, up, gain, residual) = op.slots();
    let (x, w) = (cx.inputs[0], cx.inputs[1]);
    let y = Operand { shape: cx.out, dtype: DType::F32 };
    let f32_bytes = |shape: &[usize]| 4 * shape.iter().product::<usize>() as u64;
    let mut low = Lowered::default();
    let mut x_slot = Slot::Input(0);
    if let (Some(eps), Some(g)) = (op.rms, gain) {
        x_slot = scratch(&mut low, f32_bytes(x.shape));
        let sub = Cx { ctx: cx.ctx, inputs: &[x, cx.inputs[g]], out: x.shape };
        let norm = super::norm::lower(&sub, &crate::graph::Norm::Rms { eps })?;
        append(&mut low, norm, x_slot, &[Slot::Input(0), Slot::Input(g)]);
    }
    let last = if residual.is_some() { scratch(&mut low, f32_bytes(cx.out)) } else { Slot::Output };
    let plain = MatmulParams { trans_b: true, bias: op.bias, act: op.act, imp: op.imp, ..Default::default() };
    if let Some(u) = up {
        let (gate, upped) = (scratch(&mut low, f32_bytes(cx.out)), scratch(&mut low, f32_bytes(cx.out)));
        let silu = MatmulParams { act: Some(Activation::Silu), ..plain };
        append(&mut low, pick(cx.ctx, &silu, &[x, w], cx.out)?.into(), gate, &[x_slot, Slot::Input(1)]);
        append(&mut low, pick(cx.ctx, &plain, &[x, cx.inputs[u]], cx.out)?.into(), upped, &[x_slot, Slot::Input(u)]);
        let sub = Cx { ctx: cx.ctx, inputs: &[y, y], out: cx.out };
        append(&mut low, elementwise::lower(&sub, &Elementwise::Mul)?, last, &[gate, upped]);
    } else {
        let mut ins = vec![x, w];
        let mut map = vec![x_slot, Slot::Input(1)];
        if let Some(b) = bias {
            ins.push(cx.inputs[b]);
            map.push(Slot::Input(b));
        }
        append(&mut low, pick(cx.ctx, &plain, &ins, cx.out)?.into(), last, &map);
    }
    if let Some(r) = residual {
        let sub = Cx { ctx: cx.ctx, inputs: &[y, cx.inputs[r]], out: cx.out };
        append(&mut low, elementwise::lower(&sub, &Elementwise::Add)?, Slot::Output, &[last, Slot::Input(r)]);
    }
    Ok(low)
}

/// A new scratch buffer of `bytes` for the node's launches.
fn scratch(low: &mut Lowered, bytes: u64) -> Slot {
    low.scratch.push(bytes);
    Slot::Scratch(low.scratch.len() - 1)
}

/// Appends the launches of a sub-lowering, its output bound to `out` and its input i to
/// `inputs[i]` (its own scratch buffers, if any, after the node's).
fn append(low: &mut Lowered, sub: Lowered, out: Slot, inputs: &[Slot]) {
    let base = low.scratch.len();
    let map = |s: Slot| match s {
        Slot::Output => out,
        Slot::Input(i) => inputs[i],
        Slot::Scratch(k) => Slot::Scratch(base + k),
    };
    low.scratch.extend(sub.scratch);
    low.bounds.extend(sub.bounds);
    for mut d in sub.dispatches {
        d.writes = d.writes.iter().map(|&s| map(s)).collect();
        d.reads = d.reads.iter().map(|&s| map(s)).collect();
        low.dispatches.push(d);
    }
}

fn pick(ctx: &Context, op: &MatmulParams, inputs: &[Operand], out: &[usize]) -> Result<Dispatch> {
    let MatmulParams { trans_b, bias, act, imp, .. } = *op;
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    let shapes: Vec<&[usize]> = inputs.iter().map(|o| o.shape).collect();
    if let Some(d) = lower_gemv_or_quantized(ctx, trans_b, bias, act, imp, inputs, out)? {
        return Ok(d);
    }
    match (imp, inputs[1].dtype) {
        (MatmulImpl::Naive, DType::F32) => naive(trans_b, bias, act, &shapes, out, max),
        (MatmulImpl::Naive, other) => Err(Error::Usage(format!(
            "the naive matmul takes an f32 right-hand side, not {other}; use MatmulImpl::Auto"
        ))),
        // The tuned GEMM: f32 or f16 b, tiled or subgroup kernel (see gemm::choose).
        (_, b @ (DType::F32 | DType::F16 | DType::Q8_0 | DType::Q4_1)) => {
            let (kernel, b) = gemm::choose(ctx, imp, b)?;
            gemm::dispatch(gemm::Variant { kernel, b, trans_b, bias }, act, &shapes, out, max)
        }
        (_, other) => Err(Error::Usage(format!("matmul with a {other} right-hand side has no kernel on this build"))),
    }
}

/// Decode and quantized routing: a single row (M·batch == 1) times a transposed weight goes
/// to GEMV (any weight dtype; subgroup reduction where the device has it, unless
/// `MatmulImpl::GemvShared` asks for the workgroup-memory one), and a quantized weight with
/// more rows to the tiled dequantizing matmul. None: not for these kernels.
fn lower_gemv_or_quantized(
    ctx: &Context,
    trans_b: bool,
    bias: bool,
    act: Option<Activation>,
    imp: MatmulImpl,
    inputs: &[Operand],
    out: &[usize],
) -> Result<Option<Dispatch>> {
    let (a, b) = (inputs[0].shape, inputs[1]);
    let k = a[a.len() - 1];
    let n = out[out.len() - 1];
    let rows: usize = out[..out.len() - 1].iter().product();
    let single = rows == 1 && trans_b;
    match imp {
        MatmulImpl::GemvShared | MatmulImpl::GemvSubgroup if !single => Err(Error::Usage(format!(
            "MatmulImpl::{imp:?} needs one row times a transposed weight (x [1, k] · wᵀ), got a {a:?} and b {:?} with trans_b={trans_b}",
            b.shape
        ))),
        MatmulImpl::GemvShared => Ok(Some(gemv::lower(ctx, b.dtype, k, n, bias, act, gemv::Pick::Shared)?)),
        MatmulImpl::GemvSubgroup => Ok(Some(gemv::lower(ctx, b.dtype, k, n, bias, act, gemv::Pick::Subgroup)?)),
        MatmulImpl::Auto if single => Ok(Some(gemv::lower(ctx, b.dtype, k, n, bias, act, gemv::Pick::Auto)?)),
        // Quantized prefill: the subgroup GEMM on CPU adapters (gemm::prefers_subgroup; it
        // measured ~5x the tiled qmatmul on lavapipe), the tiled qmatmul elsewhere.
        MatmulImpl::Auto if b.dtype.is_quantized() && gemm::prefers_subgroup(ctx) => Ok(None),
        MatmulImpl::Auto | MatmulImpl::Tiled if b.dtype.is_quantized() => {
            let max = ctx.limits().max_compute_workgroups_per_dimension;
            Ok(Some(qmatmul::lower(b.dtype, rows, k, n, bias, act, max)?))
        }
        _ => Ok(None),
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    trans_b: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    batch: u32,
    tiles_n: u32,
    act: u32,
}

/// The naive launch for a: [..., m, k] times b: [k, n] / [..., k, n] (or their [n, k]
/// transposes). Shapes were checked when the node was built.
pub fn naive(
    trans_b: bool,
    bias: bool,
    act: Option<Activation>,
    inputs: &[&[usize]],
    out: &[usize],
    max_per_dim: u32,
) -> Result<Dispatch> {
    let (a, b) = (inputs[0], inputs[1]);
    let k = a[a.len() - 1];
    let (m, n) = (out[out.len() - 2], out[out.len() - 1]);
    let batch: usize = out[..out.len() - 2].iter().product();
    let b_batched = b.len() > 2;
    let params = Params {
        m: as_u32("matmul m", m)?,
        n: as_u32("matmul n", n)?,
        k: as_u32("matmul k", k)?,
        trans_b: trans_b as u32,
        stride_a: as_u32("matmul a", m * k)?,
        stride_b: if b_batched { as_u32("matmul b", k * n)? } else { 0 },
        stride_c: as_u32("matmul c", m * n)?,
        batch: as_u32("matmul batch", batch)?,
        tiles_n: as_u32("matmul tiles", n.div_ceil(TILE as usize))?,
        act: act_code(act),
    };
    let tiles = (n.div_ceil(TILE as usize) * m.div_ceil(TILE as usize)) as u64 * batch as u64;
    Ok(Dispatch::new(KernelKey::Matmul(Variant::Naive { bias }), &params, grid_1d(tiles, 1, max_per_dim)?))
}

/// The constants shaders/matmul.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("TILE", TILE as u64)])
}
