//! Decode GEMV (y = act(x · Wᵀ + bias), x one row) and the quantized prefill matmul against the
//! CPU reference: fresh seeded inputs, awkward sizes (K and N = 1, odd, prime, not multiples
//! of 4 or 32 where the dtype allows; around SmolLM2's 576 / 192 / 1536; more rows than 65535
//! workgroups cover), outputs poisoned with NaN first, every kernel: what `Auto` picks (the
//! row-per-lane kernel on CPU adapters, else the subgroup tree where the adapter has it), and
//! the trees forced with `MatmulImpl::GemvSubgroup` and `MatmulImpl::GemvShared`.
//!
//! The reference widens W exactly (f16 converted, Q8_0 / Q4_1 dequantized bit for bit as
//! llama.cpp does) and accumulates in f64, so the only differences are the kernel's f32
//! rounding. Tolerances:
//! - pre-activation, per element: |got - want| <= 2·(k+1)·eps·(Σ|x||w| + |bias|) (the classic
//!   dot-product bound, plus the bias addition), whatever the summation order;
//! - with an activation: 1.2 x that (|act'| <= 1.13 for GELU/SiLU, 1 for ReLU) plus the
//!   activation's own error, rtol 1e-5 and atol 1e-6 as in tests/kernels.rs;
//! - fused quantized GEMV vs f32 GEMV on the dequantized weight: both on the GPU, the same
//!   products summed in different orders: |a - b| <= 2·k·eps·Σ|x||w|.

#![allow(clippy::too_many_arguments)] // test helpers name every case parameter

mod common;

use common::{block, expected_gemv_reduce, gemv_imps, gpu, random, seed};
use webformer::kernels::{self, gemv, KernelKey, Operand};
use webformer::{
    cpu, numel, Activation, Context, DType, Error, GpuExecutor, Graph, HostData, MatmulImpl, MatmulOptions, NodeId,
};

const ACTS: [Option<Activation>; 5] =
    [None, Some(Activation::GeluErf), Some(Activation::GeluTanh), Some(Activation::Silu), Some(Activation::Relu)];

/// `w` stored as `dtype` (quantized with llama.cpp's reference quantizer).
fn weight_data(dtype: DType, w: &[f32]) -> HostData {
    match dtype {
        DType::F32 => HostData::F32(w.to_vec()),
        DType::F16 => HostData::F16(w.iter().map(|&v| half::f16::from_f32(v)).collect()),
        DType::Q8_0 | DType::Q4_1 => HostData::Quant { dtype, len: w.len(), bytes: cpu::quant::quantize(dtype, w) },
        DType::U32 => unreachable!("not a weight dtype"),
    }
}

/// A linear node y = act(x · wᵀ + bias) with x an input of shape `x_shape`.
struct Linear {
    g: Graph,
    y: NodeId,
}

fn linear(
    x_shape: &[usize],
    w: &HostData,
    w_shape: &[usize],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    imp: MatmulImpl,
) -> Linear {
    let mut g = Graph::new();
    let x = g.input("x", x_shape, DType::F32).unwrap();
    let wn = g.weight("w", w_shape, w.clone()).unwrap();
    let bn = bias.map(|b| g.weight("b", &[b.len()], b.to_vec()).unwrap());
    let y = g.matmul_with(x, wn, MatmulOptions { trans_b: true, bias: bn, act, imp }).unwrap();
    g.output(y).unwrap();
    Linear { g, y }
}

fn run(ctx: &Context, l: &Linear, x: &[f32]) -> Vec<f32> {
    let mut exe = GpuExecutor::new(ctx, &l.g).expect("executor");
    exe.poison_outputs();
    exe.set_input("x", x).expect("input");
    exe.run().expect("run");
    block(exe.read(l.y)).expect("read").to_f32()
}

/// The kernel the node `y` lowers to on this device.
fn kernel_of(ctx: &Context, g: &Graph, y: NodeId) -> Result<KernelKey, Error> {
    let node = g.node(y);
    let ops: Vec<Operand> =
        node.inputs.iter().map(|i| Operand { shape: &g.node(*i).shape, dtype: g.node(*i).dtype }).collect();
    kernels::lower(ctx, node.op().unwrap(), &ops, &node.shape).map(|l| l.dispatches[0].key)
}

/// The GEMV reduction of a launch and whether it adds a bias: a tree kernel's own key, or the
/// lanes kernel, which plain launches reach as its fused key without SwiGLU or RMSNorm.
fn gemv_launch(key: KernelKey, what: &str) -> (gemv::Reduce, Option<bool>) {
    match key {
        KernelKey::Gemv(v) => (v.reduce, Some(v.bias)),
        KernelKey::GemvFused(f) if f.reduce == gemv::Reduce::Lanes && !f.swiglu && !f.rms => (f.reduce, None),
        other => panic!("{what}: lowered to {other:?}, not GEMV"),
    }
}

/// Checks `got` against the f64 reference of act(x · wᵀ + bias) with the bounds in the header.
fn assert_linear(
    what: &str,
    got: &[f32],
    x: &[f32],
    x_shape: &[usize],
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    act: Option<Activation>,
) {
    let k = x_shape[x_shape.len() - 1];
    let mut out = x_shape.to_vec();
    *out.last_mut().unwrap() = n;
    let mut want = cpu::matmul::matmul(x, w, x_shape, &[n, k], &out, true);
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let mut bound = cpu::matmul::matmul(&abs(x), &abs(w), x_shape, &[n, k], &out, true);
    if let Some(b) = bias {
        want = cpu::elementwise::add(&want, b);
        bound = cpu::elementwise::add(&bound, &abs(b));
    }
    let pre = want.clone();
    if let Some(a) = act {
        want = cpu::elementwise::activation(&want, a);
    }
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..want.len() {
        let tol_pre = 2.0 * (k + 1) as f32 * f32::EPSILON * bound[i];
        let tol = if act.is_some() { 1.2 * tol_pre + 1e-5 * want[i].abs() + 1e-6 } else { tol_pre };
        assert!(
            (got[i] - want[i]).abs() <= tol,
            "{what}: element {i} is {}, reference {} (pre-activation {}, tolerance {tol})",
            got[i],
            want[i],
            pre[i]
        );
    }
}

/// One GEMV case: x [1, k] (or `lead` + [1, k] with all-1 leading dims) times w [n, k] of `dtype`.
fn check_gemv(
    ctx: &Context,
    lead: &[usize],
    k: usize,
    n: usize,
    dtype: DType,
    bias: bool,
    act: Option<Activation>,
    imp: MatmulImpl,
    seed: u64,
) {
    let x_shape: Vec<usize> = lead.iter().copied().chain([1, k]).collect();
    let x = random(seed, k, -1.0, 1.0);
    let w = weight_data(dtype, &random(seed + 1, n * k, -1.0, 1.0));
    let b = random(seed + 2, n, -1.0, 1.0);
    let bias = bias.then_some(b.as_slice());
    let l = linear(&x_shape, &w, &[n, k], bias, act, imp);
    let what = format!("gemv {dtype} k={k} n={n} x{x_shape:?} bias={} {act:?} {imp:?}", bias.is_some());
    let (reduce, with_bias) = gemv_launch(kernel_of(ctx, &l.g, l.y).unwrap_or_else(|e| panic!("{what}: {e}")), &what);
    assert_eq!(reduce, expected_gemv_reduce(ctx, imp, dtype, k), "{what}: reduction");
    if let Some(b) = with_bias {
        assert_eq!(b, bias.is_some(), "{what}: bias entry point");
    }
    let got = run(ctx, &l, &x);
    assert_linear(&what, &got, &x, &x_shape, &w.to_f32(), n, bias, act);
}

/// (k, n) pairs for f32 / f16 weights: 1, odd, prime, not multiples of 4, SmolLM2 shapes.
const PLAIN_SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (1, 7),
    (3, 5),
    (4, 1),
    (7, 13),
    (31, 4),
    (64, 64),
    (97, 89),
    (5, 263),
    (576, 576),
    (576, 192),
    (1536, 576),
    (576, 1536),
    (577, 3),
];
/// (k, n) pairs for quantized weights (k whole blocks of 32).
const QUANT_SHAPES: &[(usize, usize)] = &[
    (32, 1),
    (32, 7),
    (96, 5),
    (160, 13),
    (64, 64),
    (224, 97),
    (576, 576),
    (576, 192),
    (1536, 576),
    (576, 1536),
    (32, 263),
];

#[test]
fn gemv_f32_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemv f32");
    for (i, &(k, n)) in PLAIN_SHAPES.iter().enumerate() {
        for imp in gemv_imps(&ctx) {
            check_gemv(&ctx, &[], k, n, DType::F32, false, None, imp, s + i as u64);
        }
    }
}

#[test]
fn gemv_f16_matches_reference() {
    let Some(ctx) = gpu() else { return };
    if !ctx.has(wgpu::Features::SHADER_F16) {
        // Without the feature the lowering must say so, not fail later.
        let l = linear(&[1, 8], &weight_data(DType::F16, &[0.5; 16]), &[2, 8], None, None, MatmulImpl::Auto);
        assert!(
            matches!(kernel_of(&ctx, &l.g, l.y), Err(Error::Feature { .. })),
            "f16 GEMV without SHADER_F16 must be Error::Feature"
        );
        // Refusal checked; a failure instead of a skip where CI requires shader-f16.
        assert!(!common::require_feature(&ctx, wgpu::Features::SHADER_F16, "shader-f16"));
        return;
    }
    let s = seed("gemv f16");
    for (i, &(k, n)) in PLAIN_SHAPES.iter().enumerate() {
        for imp in gemv_imps(&ctx) {
            check_gemv(&ctx, &[], k, n, DType::F16, false, None, imp, s + i as u64);
        }
    }
}

#[test]
fn gemv_quantized_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemv quantized");
    for dtype in [DType::Q8_0, DType::Q4_1] {
        for (i, &(k, n)) in QUANT_SHAPES.iter().enumerate() {
            for imp in gemv_imps(&ctx) {
                check_gemv(&ctx, &[], k, n, dtype, false, None, imp, s + i as u64);
            }
        }
    }
}

#[test]
fn gemv_epilogues_match_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemv epilogue");
    let mut dtypes = vec![DType::F32, DType::Q8_0, DType::Q4_1];
    if ctx.has(wgpu::Features::SHADER_F16) {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        for act in ACTS {
            for imp in gemv_imps(&ctx) {
                check_gemv(&ctx, &[], 96, 37, dtype, true, act, imp, s);
                if !dtype.is_quantized() {
                    check_gemv(&ctx, &[], 13, 6, dtype, true, act, imp, s + 1); // scalar (K % 4 != 0) path
                }
            }
        }
    }
}

#[test]
fn gemv_single_row_with_batch_dimensions() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemv batch dims");
    check_gemv(&ctx, &[1], 576, 192, DType::F32, true, Some(Activation::Silu), MatmulImpl::Auto, s);
    check_gemv(&ctx, &[1, 1], 64, 9, DType::Q4_1, false, None, MatmulImpl::GemvShared, s);
    // b batched too ([1, n, k] with a [1, 1, k]): still one row.
    let (k, n) = (40, 11);
    let x = random(s, k, -1.0, 1.0);
    let w = random(s + 1, n * k, -1.0, 1.0);
    let mut g = Graph::new();
    let xn = g.input("x", &[1, 1, k], DType::F32).unwrap();
    let wn = g.input("w", &[1, n, k], DType::F32).unwrap();
    let y = g.matmul_t(xn, wn).unwrap();
    g.output(y).unwrap();
    assert!(matches!(kernel_of(&ctx, &g, y), Ok(KernelKey::Gemv(_))));
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("x", &x).unwrap();
    exe.set_input("w", &w).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    assert_linear("gemv batched b", &got, &x, &[1, 1, k], &w, n, None, None);
}

#[test]
fn gemv_beyond_65535_workgroups() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemv huge");
    // 4 rows per workgroup: 262145 rows need 65537 workgroups, so the grid wraps into y.
    let n = 4 * 65536 + 1;
    check_gemv(&ctx, &[], 4, n, DType::F32, true, None, MatmulImpl::Auto, s);
    check_gemv(&ctx, &[], 32, n, DType::Q4_1, false, None, MatmulImpl::GemvShared, s);
    // The lanes kernel's 32 rows per workgroup: 2097153 rows need 65537 workgroups (Q4_1 of
    // one block per row: 50 MB of weights).
    if expected_gemv_reduce(&ctx, MatmulImpl::Auto, DType::Q4_1, 32) == gemv::Reduce::Lanes {
        check_gemv(&ctx, &[], 32, 32 * 65536 + 1, DType::Q4_1, true, None, MatmulImpl::Auto, s);
    }
}

/// The check: the fused quantized GEMV equals the f32 GEMV on the dequantized weight
/// (uploaded as `HostData::F32(dequantize(...))`) within f32 rounding.
#[test]
fn fused_quantized_gemv_equals_dequantize_then_f32_gemv() {
    let Some(ctx) = gpu() else { return };
    let s = seed("fused vs dequantized");
    for dtype in [DType::Q8_0, DType::Q4_1] {
        for (i, &(k, n)) in [(576, 576), (576, 192), (1536, 576), (576, 1536), (32, 5)].iter().enumerate() {
            for imp in gemv_imps(&ctx) {
                let x = random(s + i as u64, k, -1.0, 1.0);
                let wq = weight_data(dtype, &random(s + i as u64 + 1, n * k, -1.0, 1.0));
                let HostData::Quant { bytes, .. } = &wq else { unreachable!() };
                let wf = cpu::quant::dequantize(dtype, bytes, n * k);
                let fused = run(&ctx, &linear(&[1, k], &wq, &[n, k], None, None, imp), &x);
                let plain = run(&ctx, &linear(&[1, k], &HostData::F32(wf.clone()), &[n, k], None, None, imp), &x);
                for j in 0..n {
                    let bound: f32 = (0..k).map(|p| (x[p] * wf[j * k + p]).abs()).sum();
                    let tol = 2.0 * k as f32 * f32::EPSILON * bound;
                    assert!(
                        (fused[j] - plain[j]).abs() <= tol,
                        "{dtype} k={k} n={n} {imp:?}: row {j}: fused {} vs dequantized {} (bound {tol})",
                        fused[j],
                        plain[j]
                    );
                }
            }
        }
    }
}

/// One quantized prefill case: x `lead` + [m, k] times w [n, k].
/// Checks both kernels that take quantized weights with several rows: the tiled qmatmul
/// (`MatmulImpl::Tiled`) and, where the adapter has subgroups, the subgroup GEMM reading the
/// blocks directly (`MatmulImpl::Subgroup`, what `Auto` picks on CPU adapters).
fn check_qmatmul(
    ctx: &Context,
    lead: &[usize],
    m: usize,
    k: usize,
    n: usize,
    dtype: DType,
    bias: bool,
    act: Option<Activation>,
    seed: u64,
) {
    let x_shape: Vec<usize> = lead.iter().copied().chain([m, k]).collect();
    let x = random(seed, numel(&x_shape), -1.0, 1.0);
    let w = weight_data(dtype, &random(seed + 1, n * k, -1.0, 1.0));
    let b = random(seed + 2, n, -1.0, 1.0);
    let bias = bias.then_some(b.as_slice());
    let subgroup = webformer::kernels::gemm::subgroup_support(ctx).is_ok();
    for imp in [MatmulImpl::Tiled, MatmulImpl::Subgroup].into_iter().filter(|&i| subgroup || i == MatmulImpl::Tiled) {
        let l = linear(&x_shape, &w, &[n, k], bias, act, imp);
        let what = format!("quantized matmul ({imp:?}) {dtype} x{x_shape:?} n={n} bias={} {act:?}", bias.is_some());
        let kernel = kernel_of(ctx, &l.g, l.y);
        match imp {
            MatmulImpl::Tiled => assert!(matches!(kernel, Ok(KernelKey::QMatmul(_))), "{what}: {kernel:?}"),
            _ => assert!(matches!(kernel, Ok(KernelKey::Gemm(v)) if v.b == dtype), "{what}: {kernel:?}"),
        }
        let got = run(ctx, &l, &x);
        assert_linear(&what, &got, &x, &x_shape, &w.to_f32(), n, bias, act);
    }
}

#[test]
fn quantized_matmul_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("quantized matmul");
    let shapes: &[(usize, usize, usize)] = &[
        (2, 32, 1),
        (3, 64, 5),
        (17, 96, 13),
        (64, 64, 64),
        (65, 160, 67),
        (7, 576, 192),
        (130, 576, 193),
        (31, 1536, 70),
    ];
    for dtype in [DType::Q8_0, DType::Q4_1] {
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            check_qmatmul(&ctx, &[], m, k, n, dtype, false, None, s + i as u64);
        }
        check_qmatmul(&ctx, &[2, 3], 5, 64, 29, dtype, false, None, s); // batch flattened into rows
        check_qmatmul(&ctx, &[4], 1, 32, 9, dtype, false, None, s); // one row per batch: 4 rows, not GEMV
        for act in ACTS {
            check_qmatmul(&ctx, &[], 23, 96, 37, dtype, true, act, s + 1);
        }
    }
}

#[test]
fn lowering_routes_and_refuses_clearly() {
    let Some(ctx) = gpu() else { return };
    let w32 = weight_data(DType::F32, &random(1, 6 * 64, -1.0, 1.0));
    let wq = weight_data(DType::Q8_0, &random(1, 6 * 64, -1.0, 1.0));
    // Several rows of f32: the tuned GEMM, not GEMV.
    let l = linear(&[3, 64], &w32, &[6, 64], None, None, MatmulImpl::Auto);
    assert!(matches!(kernel_of(&ctx, &l.g, l.y), Ok(KernelKey::Gemm(_))));
    // Several rows of quantized weights: the subgroup GEMM on CPU adapters, qmatmul elsewhere.
    let l = linear(&[3, 64], &wq, &[6, 64], None, None, MatmulImpl::Auto);
    if webformer::kernels::gemm::prefers_subgroup(&ctx) {
        assert!(matches!(kernel_of(&ctx, &l.g, l.y), Ok(KernelKey::Gemm(v)) if v.b == DType::Q8_0));
    } else {
        assert!(matches!(kernel_of(&ctx, &l.g, l.y), Ok(KernelKey::QMatmul(_))));
    }
    // Forcing the GEMV on several rows is refused with a sentence.
    let l = linear(&[3, 64], &w32, &[6, 64], None, None, MatmulImpl::GemvShared);
    match kernel_of(&ctx, &l.g, l.y) {
        Err(Error::Usage(m)) => assert!(m.contains("GemvShared") && m.contains("[3, 64]"), "{m}"),
        other => panic!("GemvShared on 3 rows: {other:?}"),
    }
    // The naive kernel has no quantized path: an error, not a panic.
    let l = linear(&[1, 64], &wq, &[6, 64], None, None, MatmulImpl::Naive);
    assert!(kernel_of(&ctx, &l.g, l.y).is_err());
    // So is forcing the subgroup tree.
    let l = linear(&[3, 64], &w32, &[6, 64], None, None, MatmulImpl::GemvSubgroup);
    match kernel_of(&ctx, &l.g, l.y) {
        Err(Error::Usage(m)) => assert!(m.contains("GemvSubgroup") && m.contains("[3, 64]"), "{m}"),
        other => panic!("GemvSubgroup on 3 rows: {other:?}"),
    }
    // A single row of a quantized weight is a GEMV (several rows: see above).
    let l = linear(&[1, 64], &wq, &[6, 64], None, None, MatmulImpl::Auto);
    let (reduce, _) = gemv_launch(kernel_of(&ctx, &l.g, l.y).unwrap(), "one Q8_0 row");
    assert_eq!(reduce, expected_gemv_reduce(&ctx, MatmulImpl::Auto, DType::Q8_0, 64));
    // Without SUBGROUP, forcing the subgroup tree is refused naming the feature.
    if !ctx.has(wgpu::Features::SUBGROUP) {
        let l = linear(&[1, 64], &wq, &[6, 64], None, None, MatmulImpl::GemvSubgroup);
        assert!(matches!(kernel_of(&ctx, &l.g, l.y), Err(Error::Feature { feature: "SUBGROUP", .. })));
    }
}

/// The GEMV modules are composed from parts: `enable` directives must come first, once, and
/// `enable subgroups;` (required by browsers, rejected by naga 30) only on wasm32.
#[test]
fn composed_modules_hoist_enable_directives() {
    let src = kernels::module_source("gemv_f16_subgroup");
    let enables: Vec<&str> = src.lines().filter(|l| l.trim_start().starts_with("enable ")).collect();
    assert_eq!(enables, ["enable f16;"], "native build: f16 once, subgroups dropped");
    assert!(src.starts_with("enable f16;\n"), "enable directives precede every declaration");
    for stem in ["gemv", "gemv_subgroup", "qmatmul", "embedding"] {
        assert!(!kernels::module_source(stem).contains("\nenable "), "{stem} needs no enable directive natively");
    }
    // Every entry point a variant names exists in its module.
    use gemv::{Reduce, Variant, Weight};
    for weight in [Weight::F32, Weight::F32x4, Weight::F16, Weight::F16x4, Weight::Q8_0, Weight::Q4_1] {
        for reduce in [Reduce::Shared, Reduce::Subgroup] {
            for bias in [false, true] {
                let v = Variant { weight, reduce, bias };
                let src = kernels::module_source(v.family());
                assert!(
                    src.contains(&format!("fn {}(", v.entry_point())),
                    "{v:?}: no entry point {} in {}",
                    v.entry_point(),
                    v.family()
                );
            }
        }
    }
}
