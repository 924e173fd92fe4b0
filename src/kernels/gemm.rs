//! Tuned GEMM family (shaders/gemm*.wgsl): C = act(A · B + bias) or act(A · Bᵀ + bias),
//! batched, with B in f32 or f16 (activations and accumulation always f32).
//!
//! Two kernels, each with f32 or f16 B, so four shader modules:
//! - [`Kernel::Tiled`] (`gemm`, `gemm_f16`): workgroup-shared 64 x 128 tiles of C, 16 k-steps
//!   at a time, each of the 128 invocations an 8 x 8 register block fed by vec4 loads. Portable
//!   (no feature needed beyond SHADER_F16 for f16 B) and the default on GPUs.
//! - [`Kernel::Subgroup`] (`gemm_subgroup`, `gemm_f16_subgroup`): 8-invocation workgroups of
//!   16 x 32 tiles that share A through subgroup broadcasts, with no workgroup memory and no
//!   barrier. The default on native CPU adapters (lavapipe) that have SUBGROUP: there
//!   every load is a loop over the SIMD lanes and a barrier a coroutine switch, and this kernel
//!   measured 2 to 2.7 times the tiled one (lavapipe, 1024³ and 2048³; `webformer bench gemm`).
//!
//! The subgroup kernel also reads GGUF Q8_0 / Q4_1 weights directly (`gemm_q8_0_subgroup`,
//! `gemm_q4_1_subgroup`: shaders/gemm_bq.wgsl dequantizes each vec4 as it is loaded): on CPU
//! adapters it runs quantized prefill matmuls several times faster than the workgroup-tiled
//! `qmatmul` kernel, which GPUs use.
//!
//! The choice is made in one place, [`choose`]; `MatmulImpl::Tiled` / `MatmulImpl::Subgroup`
//! force a kernel (tests, benchmarks).

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::{Activation, MatmulImpl};
use crate::tensor::DType;

/// Lanes the subgroup kernel broadcasts A between: its workgroups are 8 invocations, which
/// must lie in one subgroup (see [`subgroup_sizes_fit`]).
pub const SUBGROUP_LANES: u32 = 8;

/// Whether the subgroup kernel is correct on an adapter whose subgroups have `min` to `max`
/// invocations (wgpu's `AdapterInfo::subgroup_min_size` / `subgroup_max_size`; a device may pick
/// any size in that range per pipeline). Its workgroup of SUBGROUP_LANES invocations takes A
/// from lanes 0..7 by subgroupBroadcast, so the whole workgroup must sit in one subgroup. Every
/// size of at least 8 does that: 8 (lavapipe with 256-bit vectors), 16, 32 (NVIDIA, Apple), 64
/// (AMD) hold the workgroup as lanes 0..7 with the rest inactive. Subgroups of 4 (SwiftShader,
/// lavapipe with 128-bit vectors, some mobile GPUs) would split it, and the broadcasts would
/// read lanes of another subgroup: refused there, where `Auto` takes the tiled kernel. Size 0
/// (not reported) is refused too.
pub fn subgroup_sizes_fit(min: u32, max: u32) -> bool {
    min >= SUBGROUP_LANES && max >= min
}

/// Which GEMM kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Workgroup-shared tiles (shaders/gemm.wgsl).
    Tiled,
    /// Subgroup broadcasts, no workgroup memory (shaders/gemm_subgroup.wgsl).
    Subgroup,
}

/// A compiled GEMM: kernel, B's element type, B's layout and whether a bias is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub kernel: Kernel,
    /// B's element type: F32, F16 (weights stored in half precision), or Q8_0 / Q4_1 blocks
    /// (subgroup kernel only).
    pub b: DType,
    /// B is stored [n, k] (linear weights) rather than [k, n].
    pub trans_b: bool,
    pub bias: bool,
}

impl Variant {
    /// The shader module (family) the variant lives in.
    pub fn family(self) -> &'static str {
        match (self.kernel, self.b) {
            (Kernel::Tiled, DType::F16) => "gemm_f16",
            (Kernel::Subgroup, DType::F16) => "gemm_f16_subgroup",
            (Kernel::Subgroup, DType::Q8_0) => "gemm_q8_0_subgroup",
            (Kernel::Subgroup, DType::Q4_1) => "gemm_q4_1_subgroup",
            (Kernel::Subgroup, _) => "gemm_subgroup",
            // f32; `dispatch` refuses the tiled kernel with quantized B.
            (Kernel::Tiled, _) => "gemm",
        }
    }

    /// Every module has the same four entry points.
    pub fn entry_point(self) -> &'static str {
        match (self.trans_b, self.bias) {
            (false, false) => "gemm_nn",
            (false, true) => "gemm_nn_bias",
            (true, false) => "gemm_nt",
            (true, true) => "gemm_nt_bias",
        }
    }

    /// A, B and the bias when there is one.
    pub fn n_inputs(self) -> u32 {
        2 + self.bias as u32
    }

    /// Rows and columns of C one workgroup computes, as in the shaders.
    pub fn tile(self) -> (u32, u32) {
        match self.kernel {
            Kernel::Tiled => (64, 128),
            Kernel::Subgroup => (16, 32),
        }
    }
}

/// The uniform block of gemm_common.wgsl (`GemmParams`), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    tiles_m: u32,
    tiles_n: u32,
    act: u32,
    vec_a: u32,
    vec_b: u32,
}

/// Whether the subgroup kernel can run here, or the sentence that says why not.
pub fn subgroup_support(ctx: &Context) -> Result<()> {
    let adapter = ctx.adapter();
    if cfg!(target_arch = "wasm32") {
        // Browsers want `enable subgroups;`, which naga (native) rejects; the tiled kernel runs there.
        return Err(Error::Usage("the subgroup GEMM (MatmulImpl::Subgroup) is not available in the browser build; use MatmulImpl::Auto or Tiled".into()));
    }
    if !ctx.has(wgpu::Features::SUBGROUP) {
        return Err(Error::Feature {
            what: "the subgroup GEMM (MatmulImpl::Subgroup)".into(),
            feature: "SUBGROUP",
            adapter: adapter.name.clone(),
        });
    }
    let [min, max] = adapter.subgroup_size;
    if !subgroup_sizes_fit(min, max) {
        return Err(Error::Usage(format!(
            "the subgroup GEMM (MatmulImpl::Subgroup) needs subgroups of at least {SUBGROUP_LANES} invocations, but '{}' reports subgroup sizes {min} to {max}",
            adapter.name
        )));
    }
    Ok(())
}

/// The kernel for a matmul whose B has `b_dtype` under `imp` on this adapter: `Tiled` /
/// `Subgroup` as asked (or an error naming what is missing), `Auto` the subgroup kernel on CPU
/// adapters that support it and the tiled one everywhere else. Quantized B (Q8_0, Q4_1) only
/// runs on the subgroup kernel (`kernels::qmatmul` is the tiled one for it).
pub fn choose(ctx: &Context, imp: MatmulImpl, b_dtype: DType) -> Result<(Kernel, DType)> {
    match b_dtype {
        DType::F32 | DType::Q8_0 | DType::Q4_1 => {}
        DType::F16 if ctx.has(wgpu::Features::SHADER_F16) => {}
        DType::F16 => {
            return Err(Error::Feature {
                what: "matmul with an f16 right-hand side (kernel family gemm_f16)".into(),
                feature: "SHADER_F16",
                adapter: ctx.adapter().name.clone(),
            })
        }
        other => {
            return Err(Error::Usage(format!(
                "the GEMM kernels take an f32, f16, Q8_0 or Q4_1 right-hand side, not {other}"
            )))
        }
    }
    let kernel = match imp {
        MatmulImpl::Tiled if b_dtype.is_quantized() => {
            return Err(Error::Usage(format!(
                "the tiled GEMM takes f32 or f16 B; {b_dtype} weights use the quantized matmul (MatmulImpl::Auto)"
            )))
        }
        MatmulImpl::Tiled => Kernel::Tiled,
        MatmulImpl::Subgroup => {
            subgroup_support(ctx)?;
            Kernel::Subgroup
        }
        // Auto (and any other choice routed here).
        _ if prefers_subgroup(ctx) => Kernel::Subgroup,
        _ if b_dtype.is_quantized() => {
            return Err(Error::Usage(format!(
                "no GEMM kernel for {b_dtype} B on this adapter; the quantized matmul handles it"
            )))
        }
        _ => Kernel::Tiled,
    };
    Ok((kernel, b_dtype))
}

/// True on CPU adapters that can run the subgroup kernel, where it is the fastest GEMM (also
/// for quantized weights).
pub fn prefers_subgroup(ctx: &Context) -> bool {
    ctx.adapter().device_type == "Cpu" && subgroup_support(ctx).is_ok()
}

/// The launch of `variant` for a: [..., m, k] times b: [k, n] / [..., k, n] (or their [n, k]
/// transposes when `variant.trans_b`). Shapes were checked when the node was built.
pub fn dispatch(
    variant: Variant,
    act: Option<Activation>,
    inputs: &[&[usize]],
    out: &[usize],
    max_per_dim: u32,
) -> Result<Dispatch> {
    dispatch_with(variant, act, inputs, out, max_per_dim, false)
}

/// `dispatch`, where `shared_a` makes one A [m, k] serve every batch of B and C (stride_a = 0,
/// as stride_b = 0 shares B): a constant left factor, such as a DFT matrix, times batched data.
pub fn dispatch_with(
    variant: Variant,
    act: Option<Activation>,
    inputs: &[&[usize]],
    out: &[usize],
    max_per_dim: u32,
    shared_a: bool,
) -> Result<Dispatch> {
    let (a, b) = (inputs[0], inputs[1]);
    let k = a[a.len() - 1];
    let (m, n) = (out[out.len() - 2], out[out.len() - 1]);
    let batch: usize = out[..out.len() - 2].iter().product();
    if variant.b.is_quantized() && (variant.kernel != Kernel::Subgroup || !variant.trans_b || b.len() != 2) {
        return Err(Error::Usage(format!(
            "the GEMM reads {} B only in the subgroup kernel, as one transposed [n, k] weight",
            variant.b
        )));
    }
    let b_batched = b.len() > 2;
    // Shaders index whole tensors (batch offset included) with u32.
    as_u32("matmul a (all batches)", if shared_a { m * k } else { batch * m * k })?;
    as_u32("matmul b (all batches)", if b_batched { batch * k * n } else { k * n })?;
    as_u32("matmul output (all batches)", batch * m * n)?;
    let (rows, cols) = variant.tile();
    let tiles_m = m.div_ceil(rows as usize);
    let tiles_n = n.div_ceil(cols as usize);
    let params = Params {
        m: as_u32("matmul m", m)?,
        n: as_u32("matmul n", n)?,
        k: as_u32("matmul k", k)?,
        batch: as_u32("matmul batch", batch)?,
        stride_a: if shared_a { 0 } else { as_u32("matmul a", m * k)? },
        stride_b: if b_batched { as_u32("matmul b", k * n)? } else { 0 },
        stride_c: as_u32("matmul output", m * n)?,
        tiles_m: as_u32("matmul row tiles", tiles_m)?,
        tiles_n: as_u32("matmul column tiles", tiles_n)?,
        act: super::matmul::act_code(act),
        vec_a: (k % 4 == 0) as u32,
        vec_b: (if variant.trans_b { k % 4 == 0 } else { n % 4 == 0 }) as u32,
    };
    let tiles = (tiles_m * tiles_n) as u64 * batch as u64;
    Ok(Dispatch::new(KernelKey::Gemm(variant), &params, grid_1d(tiles, 1, max_per_dim)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(kernel: Kernel, trans_b: bool) -> Variant {
        Variant { kernel, b: DType::F32, trans_b, bias: false }
    }

    #[test]
    fn tiles_cover_the_output_and_wrap_past_65535() {
        // 3 batches of 67 x 129: ceil(67/64) * ceil(129/128) = 4 tiles per batch.
        let d =
            dispatch(variant(Kernel::Tiled, false), None, &[&[3, 67, 33], &[33, 129]], &[3, 67, 129], 65535).unwrap();
        assert_eq!(d.workgroups, [12, 1, 1]);
        let p: Params = bytemuck::pod_read_unaligned(&d.params);
        assert_eq!((p.tiles_m, p.tiles_n, p.stride_b, p.vec_a, p.vec_b), (2, 2, 0, 0, 0));
        // 16 x 32 tiles: 2 x ceil(3_000_000 / 32) = 187_500 workgroups, more than one dimension holds.
        let d = dispatch(variant(Kernel::Subgroup, true), None, &[&[17, 8], &[3_000_000, 8]], &[17, 3_000_000], 65535)
            .unwrap();
        assert_eq!(d.workgroups, [65535, 3, 1]);
        let p: Params = bytemuck::pod_read_unaligned(&d.params);
        assert_eq!((p.vec_a, p.vec_b), (1, 1));
    }

    #[test]
    fn subgroup_kernel_needs_the_workgroup_in_one_subgroup() {
        // (min, max) subgroup sizes as adapters report them.
        for (min, max) in [(8, 8), (16, 16), (32, 32), (64, 64), (128, 128), (8, 32), (32, 64)] {
            assert!(subgroup_sizes_fit(min, max), "{min}..{max}");
        }
        // 4: SwiftShader, lavapipe at 128 bits; 4..32: may run at 4; 0: not reported.
        for (min, max) in [(4, 4), (4, 32), (1, 64), (0, 0), (0, 128)] {
            assert!(!subgroup_sizes_fit(min, max), "{min}..{max}");
        }
    }

    #[test]
    fn entry_points_and_families_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        let kernels = [
            (Kernel::Tiled, DType::F32),
            (Kernel::Tiled, DType::F16),
            (Kernel::Subgroup, DType::F32),
            (Kernel::Subgroup, DType::F16),
            (Kernel::Subgroup, DType::Q8_0),
            (Kernel::Subgroup, DType::Q4_1),
        ];
        for (kernel, b) in kernels {
            {
                for trans_b in [false, true] {
                    for bias in [false, true] {
                        let v = Variant { kernel, b, trans_b, bias };
                        assert!(seen.insert((v.family(), v.entry_point())));
                        assert_eq!(v.n_inputs(), 2 + bias as u32);
                    }
                }
            }
        }
    }
}
