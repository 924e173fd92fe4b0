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
pub mod lsh;
pub mod lsh_decode;
pub mod matmul;
pub mod norm;
pub mod qmatmul;
pub mod quant;
pub mod rope;
pub mod rope_kv;
pub mod sample;
pub mod softmax;
pub mod sort;

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::Op;
use crate::tensor::{DType, HostData};

/// Every WGSL file, by stem, embedded so that wasm needs no file access.
pub const SHADERS: &[(&str, &str)] = &[
    ("common", include_str!("../../shaders/common.wgsl")),
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
    ("gemv_head", include_str!("../../shaders/gemv_head.wgsl")),
    ("gemv", include_str!("../../shaders/gemv.wgsl")),
    ("gemv_io", include_str!("../../shaders/gemv_io.wgsl")),
    ("gemv_fused", include_str!("../../shaders/gemv_fused.wgsl")),
    ("gemv_subgroup", include_str!("../../shaders/gemv_subgroup.wgsl")),
    ("gemv_f16", include_str!("../../shaders/gemv_f16.wgsl")),
    ("gemv_f16_subgroup", include_str!("../../shaders/gemv_f16_subgroup.wgsl")),
    ("gemv_lanes", include_str!("../../shaders/gemv_lanes.wgsl")),
    ("qmatmul", include_str!("../../shaders/qmatmul.wgsl")),
    ("embedding", include_str!("../../shaders/embedding.wgsl")),
    ("norm", include_str!("../../shaders/norm.wgsl")),
    ("rope_angle", include_str!("../../shaders/rope_angle.wgsl")),
    ("rope", include_str!("../../shaders/rope.wgsl")),
    ("rope_kv_f32", include_str!("../../shaders/rope_kv_f32.wgsl")),
    ("rope_kv_f16", include_str!("../../shaders/rope_kv_f16.wgsl")),
    ("rope_kv", include_str!("../../shaders/rope_kv.wgsl")),
    ("sample", include_str!("../../shaders/sample.wgsl")),
    ("lsh", include_str!("../../shaders/lsh.wgsl")),
    ("lsh_subgroup", include_str!("../../shaders/lsh_subgroup.wgsl")),
    ("lsh_decode", include_str!("../../shaders/lsh_decode.wgsl")),
    ("gemm_common", include_str!("../../shaders/gemm_common.wgsl")),
    ("gemm_b32", include_str!("../../shaders/gemm_b32.wgsl")),
    ("gemm_b16", include_str!("../../shaders/gemm_b16.wgsl")),
    ("gemm", include_str!("../../shaders/gemm.wgsl")),
    ("gemm_subgroup", include_str!("../../shaders/gemm_subgroup.wgsl")),
    ("gemm_bq", include_str!("../../shaders/gemm_bq.wgsl")),
    ("sort", include_str!("../../shaders/sort.wgsl")),
    ("fft", include_str!("../../shaders/fft.wgsl")),
];

/// One part of a shader module: a file of shaders/, or WGSL text made in Rust (constants the
/// Rust side also uses, so that they are defined once; small switches such as a block type).
#[derive(Clone, Copy)]
pub enum Part {
    File(&'static str),
    Text(&'static str),
    Consts(fn() -> String),
}

use Part::{Consts, File, Text};

/// Shader modules and their parts, in order. WGSL has no include, so modules are composed here;
/// every module starts with shaders/common.wgsl (the runtime-slot binding and helpers).
pub const MODULES: &[(&str, &[Part])] = &[
    ("elementwise", &[Consts(elementwise::wgsl_consts), File("activation"), File("elementwise")]),
    ("matmul", &[Consts(matmul::wgsl_consts), File("activation"), File("matmul")]),
    ("copy", &[Consts(copy::wgsl_consts), File("copy")]),
    ("copy_f16", &[Consts(copy::wgsl_consts), File("copy_f16")]),
    ("softmax", &[Consts(softmax::wgsl_consts), File("softmax")]),
    ("layout", &[Consts(layout::wgsl_consts), File("layout")]),
    // K and V come through attention_kv32 (f32) or attention_kv16 (f16 caches; SHADER_F16).
    ("attention", &[Consts(attention::wgsl_consts), File("attention_kv32"), File("attention")]),
    ("attention_f16", &[Consts(attention::wgsl_consts), File("attention_kv16"), File("attention")]),
    // The GEMV modules share gemv.wgsl's body; the subgroup and f16 files add entry points.
    // The plain ones read x and W through gemv_io (and F16_PLAIN_IO), the fused ones through
    // gemv_fused (and F16_FUSED_IO), whose entry points kernels::gemv generates.
    ("gemv", &[Consts(gemv::wgsl_consts), File("activation"), File("gemv_head"), File("gemv_io"), File("gemv")]),
    (
        "gemv_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            File("activation"),
            File("gemv_head"),
            File("gemv_io"),
            File("gemv"),
            File("gemv_subgroup"),
        ],
    ),
    (
        "gemv_f16",
        &[
            Consts(gemv::wgsl_consts),
            File("activation"),
            File("gemv_head"),
            File("gemv_io"),
            File("gemv"),
            Text(gemv::F16_PLAIN_IO),
            File("gemv_f16"),
        ],
    ),
    (
        "gemv_f16_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            File("activation"),
            File("gemv_head"),
            File("gemv_io"),
            File("gemv"),
            File("gemv_subgroup"),
            Text(gemv::F16_PLAIN_IO),
            File("gemv_f16"),
            File("gemv_f16_subgroup"),
        ],
    ),
    // The fused GEMV: one module per weight precision, reduction and (SwiGLU, RMSNorm), which
    // are compile-time constants so that the inner loop carries no branch on them.
    // The GEMV of CPU adapters (SUBGROUP; see kernels::gemv::lanes_fit), plain and fused alike.
    (
        "gemv_lanes",
        &[Consts(gemv::wgsl_consts), Text(gemv::SPEC_PLAIN), File("activation"), File("gemv_head"), File("gemv_lanes")],
    ),
    (
        "gemv_lanes_rms",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_lanes"),
        ],
    ),
    (
        "gemv_lanes_swiglu",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU),
            File("activation"),
            File("gemv_head"),
            File("gemv_lanes"),
        ],
    ),
    (
        "gemv_lanes_swiglu_rms",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_lanes"),
        ],
    ),
    (
        "gemv_fused",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Consts(gemv::wgsl_fused_f32_shared),
        ],
    ),
    (
        "gemv_fused_rms",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Consts(gemv::wgsl_fused_f32_shared),
        ],
    ),
    (
        "gemv_fused_swiglu",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Consts(gemv::wgsl_fused_f32_shared),
        ],
    ),
    (
        "gemv_fused_swiglu_rms",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Consts(gemv::wgsl_fused_f32_shared),
        ],
    ),
    (
        "gemv_fused_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Consts(gemv::wgsl_fused_f32_subgroup),
        ],
    ),
    (
        "gemv_fused_rms_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Consts(gemv::wgsl_fused_f32_subgroup),
        ],
    ),
    (
        "gemv_fused_swiglu_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Consts(gemv::wgsl_fused_f32_subgroup),
        ],
    ),
    (
        "gemv_fused_swiglu_rms_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Consts(gemv::wgsl_fused_f32_subgroup),
        ],
    ),
    (
        "gemv_f16_fused",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_shared),
        ],
    ),
    (
        "gemv_f16_fused_rms",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_shared),
        ],
    ),
    (
        "gemv_f16_fused_swiglu",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_shared),
        ],
    ),
    (
        "gemv_f16_fused_swiglu_rms",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_shared),
        ],
    ),
    (
        "gemv_f16_fused_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_subgroup),
        ],
    ),
    (
        "gemv_f16_fused_rms_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_PLAIN_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_subgroup),
        ],
    ),
    (
        "gemv_f16_fused_swiglu_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_subgroup),
        ],
    ),
    (
        "gemv_f16_fused_swiglu_rms_subgroup",
        &[
            Consts(gemv::wgsl_consts),
            Text(gemv::SPEC_SWIGLU_RMS),
            File("activation"),
            File("gemv_head"),
            File("gemv_fused"),
            File("gemv"),
            File("gemv_subgroup"),
            Text(gemv::F16_FUSED_IO),
            File("gemv_f16"),
            Consts(gemv::wgsl_fused_f16_subgroup),
        ],
    ),
    ("qmatmul", &[Consts(qmatmul::wgsl_consts), File("activation"), File("qmatmul")]),
    ("embedding", &[Consts(embedding::wgsl_consts), File("embedding")]),
    ("norm", &[Consts(norm::wgsl_consts), File("norm")]),
    ("rope", &[Consts(rope::wgsl_consts), File("rope_angle"), File("rope")]),
    // The fused rope + KV append: caches through rope_kv_f32 or rope_kv_f16 (SHADER_F16).
    ("rope_kv", &[Consts(rope_kv::wgsl_consts), File("rope_angle"), File("rope_kv_f32"), File("rope_kv")]),
    ("rope_kv_f16", &[Consts(rope_kv::wgsl_consts), File("rope_angle"), File("rope_kv_f16"), File("rope_kv")]),
    ("sample", &[Consts(sample::wgsl_consts), File("sample")]),
    ("sort", &[Consts(sort::wgsl_consts), File("sort")]),
    ("lsh", &[Consts(lsh::wgsl_consts), File("lsh")]),
    // The hash on subgroup broadcasts, for CPU adapters (SUBGROUP; see kernels::lsh::hash_kernel).
    ("lsh_subgroup", &[Consts(lsh::wgsl_consts), File("lsh"), File("lsh_subgroup")]),
    ("lsh_decode", &[Consts(lsh_decode::wgsl_consts), File("lsh_decode")]),
    // FFT: one body; the workgroup-memory line size follows the adapter (see kernels::fft::Cap).
    ("fft", &[Consts(fft::wgsl_consts_k16), File("fft")]),
    ("fft_cap32", &[Consts(fft::wgsl_consts_k32), File("fft")]),
    ("fft_cap48", &[Consts(fft::wgsl_consts_k48), File("fft")]),
    // The GEMM kernels take B through gemm_b32 (f32), gemm_b16 (f16) or gemm_bq (GGUF blocks,
    // the block type chosen by a constant so the compiler drops the other type's branch).
    ("gemm", &[File("activation"), File("gemm_common"), File("gemm_b32"), File("gemm")]),
    ("gemm_subgroup", &[File("activation"), File("gemm_common"), File("gemm_b32"), File("gemm_subgroup")]),
    ("gemm_f16", &[File("activation"), File("gemm_common"), File("gemm_b16"), File("gemm")]),
    ("gemm_f16_subgroup", &[File("activation"), File("gemm_common"), File("gemm_b16"), File("gemm_subgroup")]),
    (
        "gemm_q8_0_subgroup",
        &[File("activation"), File("gemm_common"), Text(BQ_Q8_0), File("gemm_bq"), File("gemm_subgroup")],
    ),
    (
        "gemm_q4_1_subgroup",
        &[File("activation"), File("gemm_common"), Text(BQ_Q4_1), File("gemm_bq"), File("gemm_subgroup")],
    ),
];

/// The block type of gemm_bq.wgsl's loads.
const BQ_Q8_0: &str = "const GEMM_BQ_Q4_1: bool = false;\n";
const BQ_Q4_1: &str = "const GEMM_BQ_Q4_1: bool = true;\n";

/// WGSL `const` declarations of u32 values, for `Part::Consts`.
pub fn wgsl_u32(items: &[(&str, u64)]) -> String {
    items.iter().map(|(name, v)| format!("const {name}: u32 = {v}u;\n")).collect()
}

fn file(stem: &str) -> &'static str {
    SHADERS.iter().find(|(s, _)| *s == stem).map(|(_, src)| *src).unwrap_or("")
}

/// The WGSL text of one part.
pub fn part_source(part: &Part) -> Cow<'static, str> {
    match part {
        File(stem) => Cow::Borrowed(file(stem)),
        Text(t) => Cow::Borrowed(t),
        Consts(f) => Cow::Owned(f()),
    }
}

/// The parts of module `name` (empty for an unknown name).
pub fn module_parts(name: &str) -> &'static [Part] {
    MODULES.iter().find(|(s, _)| *s == name).map(|(_, p)| *p).unwrap_or(&[])
}

/// The full WGSL of a module: shaders/common.wgsl, then its parts in order.
///
/// WGSL wants `enable` directives before every declaration, so those of all parts are
/// hoisted to the top (once each). `enable subgroups;` is kept only on wasm32: browsers
/// require it, while naga 30 rejects it as unimplemented and gates subgroup operations on the
/// device's SUBGROUP feature instead.
pub fn module_source(name: &str) -> String {
    compose(&[&[File("common")], module_parts(name)].concat())
}

/// Joins parts into one module source, `enable` directives first.
pub fn compose(parts: &[Part]) -> String {
    let mut enables: Vec<String> = Vec::new();
    let mut body = String::new();
    for part in parts {
        for line in part_source(part).lines() {
            let t = line.trim();
            if t.starts_with("enable ") && t.ends_with(';') {
                let keep = t != "enable subgroups;" || cfg!(target_arch = "wasm32");
                if keep && !enables.iter().any(|e| e == t) {
                    enables.push(t.to_string());
                }
                continue;
            }
            body.push_str(line);
            body.push('\n');
        }
    }
    let mut src = String::new();
    for e in enables {
        src.push_str(&e);
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
    GemvFused(gemv::Fused),
    QMatmul(qmatmul::Variant),
    Embedding(embedding::Variant),
    Norm(norm::Variant),
    Rope(rope::Variant),
    Sample(sample::Variant),
    Gemm(gemm::Variant),
    Sort(sort::Variant),
    Lsh(lsh::Variant),
    LshDecode(lsh_decode::Variant),
    Fft(fft::Variant),
    RopeKv(rope_kv::Variant),
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
            KernelKey::GemvFused(v) => v.family(),
            KernelKey::QMatmul(_) => "qmatmul",
            KernelKey::Embedding(_) => "embedding",
            KernelKey::Norm(_) => "norm",
            KernelKey::Rope(_) => "rope",
            KernelKey::Sample(_) => "sample",
            KernelKey::Gemm(v) => v.family(),
            KernelKey::Sort(_) => "sort",
            KernelKey::Lsh(v) => v.family(),
            KernelKey::LshDecode(_) => "lsh_decode",
            KernelKey::Fft(v) => v.family(),
            KernelKey::RopeKv(v) => v.family(),
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
            KernelKey::GemvFused(v) => v.entry_point(),
            KernelKey::QMatmul(v) => v.entry_point(),
            KernelKey::Embedding(v) => v.entry_point(),
            KernelKey::Norm(v) => v.entry_point(),
            KernelKey::Rope(v) => v.entry_point(),
            KernelKey::Sample(v) => v.entry_point(),
            KernelKey::Gemm(v) => v.entry_point(),
            KernelKey::Sort(v) => v.entry_point(),
            KernelKey::Lsh(v) => v.entry_point(),
            KernelKey::LshDecode(v) => v.entry_point(),
            KernelKey::Fft(v) => v.entry_point(),
            KernelKey::RopeKv(v) => v.entry_point(),
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
            KernelKey::GemvFused(v) => (1, v.n_inputs()),
            KernelKey::QMatmul(v) => (1, v.n_inputs()),
            KernelKey::Embedding(_) => (1, 2),
            KernelKey::Norm(v) => (1, v.n_inputs()),
            KernelKey::Rope(_) => (1, 1),
            KernelKey::Sample(_) => (1, 1),
            KernelKey::Gemm(v) => (1, v.n_inputs()),
            KernelKey::Sort(v) => v.io_counts(),
            KernelKey::Lsh(v) => (1, v.n_inputs()),
            KernelKey::LshDecode(v) => (1, v.n_inputs()),
            KernelKey::Fft(v) => v.io_counts(),
            KernelKey::RopeKv(v) => v.io_counts(),
        }
    }
}

impl KernelKey {
    /// Every kernel key there is (each compiles to one pipeline), for tests that walk them all.
    pub fn all() -> Vec<KernelKey> {
        use DType::{F16, F32, Q4_1, Q8_0};
        let mut keys = Vec::new();
        let tf = [false, true];
        for v in [
            elementwise::Variant::Add,
            elementwise::Variant::Mul,
            elementwise::Variant::Scale,
            elementwise::Variant::GeluErf,
            elementwise::Variant::GeluTanh,
            elementwise::Variant::Silu,
            elementwise::Variant::Relu,
        ] {
            keys.push(KernelKey::Elementwise(v));
        }
        keys.extend(tf.map(|bias| KernelKey::Matmul(matmul::Variant::Naive { bias })));
        for v in [copy::Variant::WriteRows, copy::Variant::WriteRowsF16, copy::Variant::Rows, copy::Variant::PlaceRows]
        {
            keys.push(KernelKey::Copy(v));
        }
        keys.extend([softmax::Variant::Plain, softmax::Variant::Masked].map(KernelKey::Softmax));
        keys.push(KernelKey::Layout(layout::Variant::Permute));
        for (mask, kv_f16) in tf.iter().flat_map(|&m| tf.map(|k| (m, k))) {
            keys.push(KernelKey::Attention(attention::Variant::Prefill { mask, kv_f16 }));
            keys.push(KernelKey::Attention(attention::Variant::Decode { mask, kv_f16 }));
            keys.push(KernelKey::Attention(attention::Variant::DecodeSingle { mask, kv_f16 }));
        }
        keys.push(KernelKey::Attention(attention::Variant::Merge));
        use gemv::{Reduce, Weight};
        for weight in [Weight::F32, Weight::F32x4, Weight::F16, Weight::F16x4, Weight::Q8_0, Weight::Q4_1] {
            for reduce in [Reduce::Shared, Reduce::Subgroup] {
                keys.extend(tf.map(|bias| KernelKey::Gemv(gemv::Variant { weight, reduce, bias })));
            }
        }
        keys.extend(gemv::Fused::all().into_iter().map(KernelKey::GemvFused));
        for bias in tf {
            keys.push(KernelKey::QMatmul(qmatmul::Variant::Q8_0 { bias }));
            keys.push(KernelKey::QMatmul(qmatmul::Variant::Q4_1 { bias }));
        }
        use embedding::Variant as E;
        keys.extend([E::F32, E::F16, E::Q8_0, E::Q4_1].map(KernelKey::Embedding));
        keys.extend([norm::Variant::LayerNorm, norm::Variant::RmsNorm].map(KernelKey::Norm));
        keys.extend([rope::Variant::Adjacent, rope::Variant::Halves].map(KernelKey::Rope));
        keys.extend(tf.map(|kv_f16| KernelKey::RopeKv(rope_kv::Variant { kv_f16 })));
        keys.extend([sample::Variant::Argmax, sample::Variant::Sample].map(KernelKey::Sample));
        keys.extend(sort::Variant::ALL.map(KernelKey::Sort));
        use lsh::Variant as L;
        keys.extend([L::Hash, L::HashSubgroup, L::KeyNorm, L::Chunk, L::Combine, L::Local].map(KernelKey::Lsh));
        keys.extend(lsh_decode::Variant::ALL.map(KernelKey::LshDecode));
        use fft::{Cap, Variant as F};
        let ffts = [
            F::Pass,
            F::BluesteinKernel,
            F::BluesteinChirp,
            F::BluesteinMul,
            F::BluesteinOut,
            F::MixSplit,
            F::MixMirror,
            F::DftMatrix,
            F::DftStack,
        ];
        keys.extend([Cap::K16, Cap::K32, Cap::K48].map(|c| KernelKey::Fft(F::Rows(c))));
        keys.extend(ffts.map(KernelKey::Fft));
        let gemms = [
            (gemm::Kernel::Tiled, F32),
            (gemm::Kernel::Tiled, F16),
            (gemm::Kernel::Subgroup, F32),
            (gemm::Kernel::Subgroup, F16),
            (gemm::Kernel::Subgroup, Q8_0),
            (gemm::Kernel::Subgroup, Q4_1),
        ];
        for (kernel, b) in gemms {
            for (trans_b, bias) in tf.iter().flat_map(|&t| tf.map(|b| (t, b))) {
                keys.push(KernelKey::Gemm(gemm::Variant { kernel, b, trans_b, bias }));
            }
        }
        keys
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

/// What every family's lowering is given: the device, the node's inputs and its output shape.
/// Each family has one `lower(cx: &Cx, op: &<its op>) -> Result<Lowered>`.
pub struct Cx<'a> {
    pub ctx: &'a Context,
    pub inputs: &'a [Operand<'a>],
    pub out: &'a [usize],
}

impl Cx<'_> {
    /// Input `i`'s shape.
    pub fn shape(&self, i: usize) -> &[usize] {
        self.inputs[i].shape
    }

    /// The device's largest workgroup count in one grid dimension (see `grid_1d`).
    pub fn max_per_dim(&self) -> u32 {
        self.ctx.limits().max_compute_workgroups_per_dimension
    }
}

/// Chooses the kernels and computes the launches of one graph node: the registry of kernel
/// families, one arm each.
pub fn lower(ctx: &Context, op: &Op, inputs: &[Operand], out: &[usize]) -> Result<Lowered> {
    let cx = &Cx { ctx, inputs, out };
    match op {
        Op::Elementwise(o) => elementwise::lower(cx, o),
        Op::Matmul(o) => matmul::lower(cx, o),
        Op::Copy(o) => copy::lower(cx, o),
        Op::Softmax(o) => softmax::lower(cx, o),
        Op::Layout(o) => layout::lower(cx, o),
        Op::Attention(o) => attention::lower(cx, o),
        Op::Embedding => embedding::lower(cx),
        Op::Norm(o) => norm::lower(cx, o),
        Op::Rope(o) => rope::lower(cx, o),
        Op::Sample(o) => sample::lower(cx, o),
        Op::Sort(o) => sort::lower(cx, o),
        Op::Lsh(o) => lsh::lower(cx, o),
        Op::LshDecode(o) => lsh_decode::lower(cx, o),
        Op::Fft(o) => fft::lower(cx, o),
        Op::RopeKv(o) => rope_kv::lower(cx, o),
        Op::Reshape => Err(Error::Usage("reshape is a view and launches no kernel".into())),
    }
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
