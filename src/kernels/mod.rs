//! Kernel families: for each, the variant enum, Pod params and dispatch math. The executor
//! binds every kernel the same way (see `gpu::pipeline`), so a family only says which entry
//! point to run, with which params, over which grid.

pub mod attention;
pub mod copy;
pub mod elementwise;
pub mod embedding;
pub mod fft;
pub mod gemm;
pub mod gemv;
pub mod layout;
pub mod matmul;
pub mod norm;
pub mod qmatmul;
pub mod quant;
pub mod rope;
pub mod sample;
pub mod softmax;

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
    ("copy_f16", include_str!("../../shaders/copy_f16.wgsl")),
    ("softmax", include_str!("../../shaders/softmax.wgsl")),
    ("layout", include_str!("../../shaders/layout.wgsl")),
    ("attention_kv32", include_str!("../../shaders/attention_kv32.wgsl")),
    ("attention_kv16", include_str!("../../shaders/attention_kv16.wgsl")),
    ("attention", include_str!("../../shaders/attention.wgsl")),
    ("attention_f16", include_str!("../../shaders/attention_f16.wgsl")),
    ("gemv", include_str!("../../shaders/gemv.wgsl")),
    ("gemv_subgroup", include_str!("../../shaders/gemv_subgroup.wgsl")),
    ("gemv_f16", include_str!("../../shaders/gemv_f16.wgsl")),
    ("gemv_f16_subgroup", include_str!("../../shaders/gemv_f16_subgroup.wgsl")),
    ("qmatmul", include_str!("../../shaders/qmatmul.wgsl")),
    ("embedding", include_str!("../../shaders/embedding.wgsl")),
    ("norm", include_str!("../../shaders/norm.wgsl")),
    ("rope", include_str!("../../shaders/rope.wgsl")),
    ("sample", include_str!("../../shaders/sample.wgsl")),
    ("gemm_common", include_str!("../../shaders/gemm_common.wgsl")),
    ("gemm_b32", include_str!("../../shaders/gemm_b32.wgsl")),
    ("gemm_b16", include_str!("../../shaders/gemm_b16.wgsl")),
    ("gemm", include_str!("../../shaders/gemm.wgsl")),
    ("gemm_subgroup", include_str!("../../shaders/gemm_subgroup.wgsl")),
    ("gemm_f16", include_str!("../../shaders/gemm_f16.wgsl")),
    ("gemm_f16_subgroup", include_str!("../../shaders/gemm_f16_subgroup.wgsl")),
    ("gemm_bq8_0", include_str!("../../shaders/gemm_bq8_0.wgsl")),
    ("gemm_bq4_1", include_str!("../../shaders/gemm_bq4_1.wgsl")),
    ("gemm_bq", include_str!("../../shaders/gemm_bq.wgsl")),
    ("gemm_q8_0_subgroup", include_str!("../../shaders/gemm_q8_0_subgroup.wgsl")),
    ("gemm_q4_1_subgroup", include_str!("../../shaders/gemm_q4_1_subgroup.wgsl")),
    ("fft_cap16", include_str!("../../shaders/fft_cap16.wgsl")),
    ("fft", include_str!("../../shaders/fft.wgsl")),
    ("fft_cap32", include_str!("../../shaders/fft_cap32.wgsl")),
    ("fft_cap48", include_str!("../../shaders/fft_cap48.wgsl")),
];

/// Kernel families (one shader module each) and the preludes prepended to them; WGSL has no
/// include, so shared helpers are composed here.
pub const FAMILIES: &[(&str, &[&str])] = &[
    ("elementwise", &["activation"]),
    ("matmul", &["activation"]),
    ("copy", &[]),
    ("copy_f16", &[]),
    ("softmax", &[]),
    ("layout", &[]),
    // K and V come through attention_kv32 (f32) or attention_kv16 (f16 caches).
    ("attention", &["attention_kv32"]),
    ("attention_f16", &["attention_kv16", "attention"]),
    // The GEMV modules share gemv.wgsl's body; the subgroup and f16 files add entry points.
    ("gemv", &["activation"]),
    ("gemv_subgroup", &["activation", "gemv"]),
    ("gemv_f16", &["activation", "gemv"]),
    ("gemv_f16_subgroup", &["activation", "gemv", "gemv_subgroup", "gemv_f16"]),
    ("qmatmul", &["activation"]),
    ("embedding", &[]),
    ("norm", &[]),
    ("rope", &[]),
    ("sample", &[]),
    // The GEMM kernels take B through gemm_b32 (f32) or gemm_b16 (f16); the f16 families reuse
    // the kernel files as preludes (see kernels::gemm).
    ("gemm", &["activation", "gemm_common", "gemm_b32"]),
    ("gemm_subgroup", &["activation", "gemm_common", "gemm_b32"]),
    ("gemm_f16", &["activation", "gemm_common", "gemm_b16", "gemm"]),
    ("gemm_f16_subgroup", &["activation", "gemm_common", "gemm_b16", "gemm_subgroup"]),
    // Quantized B (prefill on CPU adapters): gemm_bq.wgsl's loads, the file naming the type.
    ("gemm_q8_0_subgroup", &["activation", "gemm_common", "gemm_bq8_0", "gemm_bq", "gemm_subgroup"]),
    ("gemm_q4_1_subgroup", &["activation", "gemm_common", "gemm_bq4_1", "gemm_bq", "gemm_subgroup"]),
    // FFT: one body, the workgroup-memory size from a one-line file (see kernels::fft::Cap).
    ("fft", &["fft_cap16"]),
    ("fft_cap32", &["fft"]),
    ("fft_cap48", &["fft"]),
];

fn file(stem: &str) -> &'static str {
    SHADERS.iter().find(|(s, _)| *s == stem).map(|(_, src)| *src).unwrap_or("")
}

/// The full WGSL of a family's module: its preludes, then its own file.
///
/// WGSL wants `enable` directives before every declaration, so those of all parts are
/// hoisted to the top (once each). `enable subgroups;` is kept only on wasm32: browsers
/// require it, while naga 30 rejects it as unimplemented and gates subgroup operations on the
/// device's SUBGROUP feature instead.
pub fn module_source(stem: &str) -> String {
    let preludes = FAMILIES.iter().find(|(s, _)| *s == stem).map(|(_, p)| *p).unwrap_or(&[]);
    let mut enables: Vec<&str> = Vec::new();
    let mut body = String::new();
    for part in preludes.iter().copied().chain([stem]) {
        for line in file(part).lines() {
            let t = line.trim();
            if t.starts_with("enable ") && t.ends_with(';') {
                let keep = t != "enable subgroups;" || cfg!(target_arch = "wasm32");
                if keep && !enables.contains(&t) {
                    enables.push(t);
                }
                continue;
            }
            body.push_str(line);
            body.push('\n');
        }
    }
    let mut src = String::new();
    for e in enables {
        src.push_str(e);
        src.push('\n');
    }
    src.push_str(&body);
    src
}

/// A compiled kernel's identity: family plus typed variant. Pipelines are cached under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKey {
    Elementwise(elementwise::Variant),
    Matmul(matmul::Variant),
    Copy(copy::Variant),
    Softmax(softmax::Variant),
    Layout(layout::Variant),
    Attention(attention::Variant),
    Gemv(gemv::Variant),
    QMatmul(qmatmul::Variant),
    Embedding(embedding::Variant),
    Norm(norm::Variant),
    Rope(rope::Variant),
    Sample(sample::Variant),
    Gemm(gemm::Variant),
    Fft(fft::Variant),
}

impl KernelKey {
    /// The family's file stem (its shader module).
    pub fn family(self) -> &'static str {
        match self {
            KernelKey::Elementwise(_) => "elementwise",
            KernelKey::Matmul(_) => "matmul",
            KernelKey::Copy(v) => v.family(),
            KernelKey::Softmax(_) => "softmax",
            KernelKey::Layout(_) => "layout",
            KernelKey::Attention(v) => v.family(),
            KernelKey::Gemv(v) => v.family(),
            KernelKey::QMatmul(_) => "qmatmul",
            KernelKey::Embedding(_) => "embedding",
            KernelKey::Norm(_) => "norm",
            KernelKey::Rope(_) => "rope",
            KernelKey::Sample(_) => "sample",
            KernelKey::Gemm(v) => v.family(),
            KernelKey::Fft(v) => v.family(),
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            KernelKey::Elementwise(v) => v.entry_point(),
            KernelKey::Matmul(v) => v.entry_point(),
            KernelKey::Copy(v) => v.entry_point(),
            KernelKey::Softmax(v) => v.entry_point(),
            KernelKey::Layout(v) => v.entry_point(),
            KernelKey::Attention(v) => v.entry_point(),
            KernelKey::Gemv(v) => v.entry_point(),
            KernelKey::QMatmul(v) => v.entry_point(),
            KernelKey::Embedding(v) => v.entry_point(),
            KernelKey::Norm(v) => v.entry_point(),
            KernelKey::Rope(v) => v.entry_point(),
            KernelKey::Sample(v) => v.entry_point(),
            KernelKey::Gemm(v) => v.entry_point(),
            KernelKey::Fft(v) => v.entry_point(),
        }
    }

    /// (outputs, inputs) storage bindings, in that order after the two uniforms.
    pub fn io_counts(self) -> (u32, u32) {
        match self {
            KernelKey::Elementwise(v) => (1, v.n_inputs()),
            KernelKey::Matmul(v) => (1, v.n_inputs()),
            KernelKey::Copy(_) => (1, 1),
            KernelKey::Softmax(v) => (1, v.n_inputs()),
            KernelKey::Layout(_) => (1, 1),
            KernelKey::Attention(v) => (1, v.n_inputs()),
            KernelKey::Gemv(v) => (1, v.n_inputs()),
            KernelKey::QMatmul(v) => (1, v.n_inputs()),
            KernelKey::Embedding(_) => (1, 2),
            KernelKey::Norm(v) => (1, v.n_inputs()),
            KernelKey::Rope(_) => (1, 1),
            KernelKey::Sample(_) => (1, 1),
            KernelKey::Gemm(v) => (1, v.n_inputs()),
            KernelKey::Fft(v) => v.io_counts(),
        }
    }
}

/// What one binding of a dispatch refers to: the node's value, one of its inputs, or one of
/// the scratch buffers its lowering asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Output,
    Input(usize),
    Scratch(usize),
}

/// One kernel launch: what to run, its params (at most `PARAMS_SLOT` bytes), the grid, and
/// its storage bindings in order after the two uniforms: `writes` (read-write), then `reads`
/// (read-only), as many as the key's `io_counts`.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub key: KernelKey,
    pub params: Vec<u8>,
    pub workgroups: [u32; 3],
    pub writes: Vec<Slot>,
    pub reads: Vec<Slot>,
}

impl Dispatch {
    /// A launch that writes the node's value and reads its inputs in order (the usual case).
    pub fn new<P: bytemuck::Pod>(key: KernelKey, params: &P, workgroups: [u32; 3]) -> Self {
        let (n_out, n_in) = key.io_counts();
        let writes = (0..n_out as usize).map(|_| Slot::Output).collect();
        let reads = (0..n_in as usize).map(Slot::Input).collect();
        Self { key, params: bytemuck::bytes_of(params).to_vec(), workgroups, writes, reads }
    }

    /// The same launch with other bindings (scratch buffers, an in-place state).
    pub fn bind(mut self, writes: &[Slot], reads: &[Slot]) -> Self {
        self.writes = writes.to_vec();
        self.reads = reads.to_vec();
        self
    }
}

/// A bound the executor checks on the host before each run, because a runtime slot moves
/// where a kernel reads or writes: `runtime[slot] + rows <= capacity` (a row write must fit
/// its state; the queries of an attention over a KV cache must fit the cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeBound {
    pub slot: u32,
    pub rows: usize,
    pub capacity: usize,
}

/// What a graph node lowers to: its launches in order, the scratch buffers (bytes each) they
/// share while the node runs, and the runtime bounds they rely on. The planner gives scratch
/// pool space that lives for this node's step only; graph/ and cpu/ never see it.
#[derive(Clone, Debug, Default)]
pub struct Lowered {
    pub dispatches: Vec<Dispatch>,
    pub scratch: Vec<u64>,
    pub bounds: Vec<RuntimeBound>,
}

impl From<Dispatch> for Lowered {
    fn from(d: Dispatch) -> Self {
        Self { dispatches: vec![d], ..Default::default() }
    }
}

impl Lowered {
    /// Adds a runtime bound to check before each run.
    pub fn with_bound(mut self, slot: u32, rows: usize, capacity: usize) -> Self {
        self.bounds.push(RuntimeBound { slot, rows, capacity });
        self
    }
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

/// Chooses the kernels and computes the launches of one graph node.
pub fn lower(ctx: &Context, op: &Op, inputs: &[Operand], out: &[usize]) -> Result<Lowered> {
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    let shapes: Vec<&[usize]> = inputs.iter().map(|o| o.shape).collect();
    Ok(match *op {
        Op::Add | Op::Mul | Op::Scale(_) | Op::Activation(_) => elementwise::dispatch(op, &shapes, out, max)?.into(),
        Op::Matmul { .. } => matmul::lower(ctx, op, inputs, out)?.into(),
        Op::WriteRows { slot } => copy::write_rows(ctx, slot, inputs, max)?,
        Op::Rows { start, .. } => copy::rows(start, shapes[0], out, max)?.into(),
        Op::Reshape => return Err(Error::Usage("reshape is a view and launches no kernel".into())),
        Op::Softmax(ref sp) => softmax::dispatch(sp, inputs, out, max)?.into(),
        Op::Permute { perm, rank } => layout::dispatch(&perm[..rank as usize], shapes[0], out, max)?.into(),
        Op::Attention(ref a) => attention::lower(ctx, a, inputs, max)?,
        Op::Embedding => embedding::lower(inputs, out, max)?.into(),
        Op::LayerNorm { .. } | Op::RmsNorm { .. } => norm::dispatch(op, out, max)?.into(),
        Op::Rope { .. } => rope::dispatch(op, out, max)?.into(),
        Op::Argmax | Op::Sample { .. } => sample::dispatch(op, shapes[0], max)?.into(),
        Op::Fft(ref f) => fft::lower(ctx, f, inputs, max)?,
    })
}

/// Converts a size to the u32 a shader indexes with, or says which limit it breaks.
pub(crate) fn as_u32(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Limit {
        what: what.into(),
        needed: v as u64,
        max: u32::MAX as u64,
        limit: "32-bit shader indexing",
    })
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
