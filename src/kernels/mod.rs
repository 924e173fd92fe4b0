//! Kernel families: for each, the variant enum, Pod params and dispatch math. The executor
//! binds every kernel the same way (see `gpu::pipeline`), so a family only says which entry
//! point to run, with which params, over which grid.

pub mod copy;
pub mod elementwise;
pub mod gemm;
pub mod matmul;
pub mod quant;

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::Op;
use crate::tensor::{DType, HostData};

/// Every WGSL file, by stem, embedded so that wasm needs no file access.
pub const SHADERS: &[(&str, &str)] = &[
    ("activation", include_str!("../../shaders/activation.wgsl")),
    ("elementwise", include_str!("../../shaders/elementwise.wgsl")),
    ("matmul", include_str!("../../shaders/matmul.wgsl")),
    ("copy", include_str!("../../shaders/copy.wgsl")),
    ("gemm_common", include_str!("../../shaders/gemm_common.wgsl")),
    ("gemm_b32", include_str!("../../shaders/gemm_b32.wgsl")),
    ("gemm_b16", include_str!("../../shaders/gemm_b16.wgsl")),
    ("gemm", include_str!("../../shaders/gemm.wgsl")),
    ("gemm_subgroup", include_str!("../../shaders/gemm_subgroup.wgsl")),
    ("gemm_f16", include_str!("../../shaders/gemm_f16.wgsl")),
    ("gemm_f16_subgroup", include_str!("../../shaders/gemm_f16_subgroup.wgsl")),
];

/// Kernel families (one shader module each) and the preludes prepended to them; WGSL has no
/// include, so shared helpers are composed here.
pub const FAMILIES: &[(&str, &[&str])] = &[
    ("elementwise", &["activation"]),
    ("matmul", &["activation"]),
    ("copy", &[]),
    // The GEMM kernels take B through gemm_b32 (f32) or gemm_b16 (f16); the f16 families reuse
    // the kernel files as preludes (see kernels::gemm).
    ("gemm", &["activation", "gemm_common", "gemm_b32"]),
    ("gemm_subgroup", &["activation", "gemm_common", "gemm_b32"]),
    ("gemm_f16", &["activation", "gemm_common", "gemm_b16", "gemm"]),
    ("gemm_f16_subgroup", &["activation", "gemm_common", "gemm_b16", "gemm_subgroup"]),
];

fn file(stem: &str) -> &'static str {
    SHADERS.iter().find(|(s, _)| *s == stem).map(|(_, src)| *src).unwrap_or("")
}

/// The full WGSL of a family's module: its preludes, then its own file. `enable` directives
/// (e.g. `enable f16;` of an f16 prelude) are lifted to the top, where WGSL requires them.
pub fn module_source(stem: &str) -> String {
    let preludes = FAMILIES.iter().find(|(s, _)| *s == stem).map(|(_, p)| *p).unwrap_or(&[]);
    let (mut directives, mut src) = (String::new(), String::new());
    for part in preludes.iter().copied().chain([stem]) {
        for line in file(part).lines() {
            if line.starts_with("enable ") {
                if !directives.lines().any(|d| d == line) {
                    directives.push_str(line);
                    directives.push('\n');
                }
            } else {
                src.push_str(line);
                src.push('\n');
            }
        }
    }
    directives + &src
}

/// A compiled kernel's identity: family plus typed variant. Pipelines are cached under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKey {
    Elementwise(elementwise::Variant),
    Matmul(matmul::Variant),
    Copy(copy::Variant),
    Gemm(gemm::Variant),
}

impl KernelKey {
    /// The family's file stem (its shader module).
    pub fn family(self) -> &'static str {
        match self {
            KernelKey::Elementwise(_) => "elementwise",
            KernelKey::Matmul(_) => "matmul",
            KernelKey::Copy(_) => "copy",
            KernelKey::Gemm(v) => v.family(),
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            KernelKey::Elementwise(v) => v.entry_point(),
            KernelKey::Matmul(v) => v.entry_point(),
            KernelKey::Copy(v) => v.entry_point(),
            KernelKey::Gemm(v) => v.entry_point(),
        }
    }

    /// (outputs, inputs) storage bindings, in that order after the two uniforms.
    pub fn io_counts(self) -> (u32, u32) {
        match self {
            KernelKey::Elementwise(v) => (1, v.n_inputs()),
            KernelKey::Matmul(v) => (1, v.n_inputs()),
            KernelKey::Copy(_) => (1, 1),
            KernelKey::Gemm(v) => (1, v.n_inputs()),
        }
    }
}

/// One kernel launch: what to run, its params (at most `PARAMS_SLOT` bytes) and the grid.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub key: KernelKey,
    pub params: Vec<u8>,
    pub workgroups: [u32; 3],
}

/// Workgroups for `n` elements at `per_group` each, wrapped into y when x would exceed the
/// per-dimension limit (65535 on WebGPU). Shaders rebuild the flat index as y * nx + x.
pub fn grid_1d(n: u64, per_group: u32, max_per_dim: u32) -> Result<[u32; 3]> {
    let groups = n.div_ceil(per_group as u64).max(1);
    let x = groups.min(max_per_dim as u64);
    let y = groups.div_ceil(x);
    if y > max_per_dim as u64 {
        return Err(Error::Limit {
            what: format!("a launch over {n} elements"),
            needed: groups,
            max: (max_per_dim as u64) * (max_per_dim as u64),
            limit: "max_compute_workgroups_per_dimension squared",
        });
    }
    Ok([x as u32, y as u32, 1])
}

/// A node input as lowering sees it.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    pub shape: &'a [usize],
    pub dtype: DType,
}

/// Chooses the kernel and computes its launch for one graph node.
pub fn lower(ctx: &Context, op: &Op, inputs: &[Operand], out: &[usize]) -> Result<Dispatch> {
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    let shapes: Vec<&[usize]> = inputs.iter().map(|o| o.shape).collect();
    match *op {
        Op::Add | Op::Mul | Op::Scale(_) | Op::Activation(_) => elementwise::dispatch(op, &shapes, out, max),
        Op::Matmul { .. } => matmul::lower(ctx, op, inputs, out),
        Op::WriteRows { slot } => copy::dispatch(slot, &shapes, max),
        Op::Reshape => Err(Error::Usage("reshape is a view and launches no kernel".into())),
    }
}

/// Converts a size to the u32 a shader indexes with, or says which limit it breaks.
pub(crate) fn as_u32(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Limit { what: what.into(), needed: v as u64, max: u32::MAX as u64, limit: "32-bit shader indexing" })
}

/// Bytes a tensor of `n` elements of `dtype` takes on the GPU.
pub fn gpu_bytes(dtype: DType, n: usize) -> u64 {
    quant::gpu_bytes(dtype, n) as u64
}

/// Weight data in the layout kernels read (quantized blocks repacked; the rest as is).
pub fn gpu_layout(data: &HostData) -> Cow<'_, [u8]> {
    match data {
        HostData::Quant { dtype, len, bytes } => Cow::Owned(quant::repack(*dtype, bytes, *len)),
        other => Cow::Borrowed(other.as_bytes()),
    }
}
