//! Fused linear layers (`Graph::linear_with`: RMSNorm prologue, SwiGLU pair, bias/activation,
//! residual epilogue) against their CPU reference and against the composite of unfused nodes
//! (rms_norm, linear, silu, mul, add) run on the GPU in the same plan. Fresh seeded inputs,
//! awkward sizes (M = 1, 3, 17, 70; K and N of 1, 7, 33, SmolLM2's 576 and 1536), every weight
//! dtype (f32, f16, Q8_0, Q4_1), GPU outputs poisoned with NaN first. One row is the decode
//! case and must be one fused GEMV launch (every kernel: what `Auto` picks, the lanes kernel on
//! CPU adapters, and the trees forced by `MatmulImpl::GemvSubgroup` / `GemvShared`); more rows lower to the
//! plain kernels in sequence.
//!
//! The reference widens W exactly and accumulates in f64 (tests/gemv.rs), so only the kernels'
//! f32 rounding differs. Tolerances, per element, from the bounds of the unfused tests:
//! - a product p = x' · wᵀ (+ bias), x' = rms_norm(x) or x: T = c·(k+2)·eps·(Σ|x'||w| + |bias|)
//!   with c = 2 (the dot-product bound 2·(k+1)·eps of tests/gemv.rs, rounded up) and c = 3
//!   with RMSNorm (the row scale s, from Σx² in f32, a square root and a division, is off by
//!   at most (k+2)·eps relative, which scales the whole sum);
//! - an activation: 1.2·T + 1e-5·|y| + 1e-6, as tests/gemv.rs (|act'| <= 1.13);
//! - SwiGLU y = silu(a)·b: |silu'| <= 1.1, so 1.1·T_a·|b| + |silu(a)|·T_b + 1e-5·|y| + 1e-6;
//! - the residual add: one more rounding, eps·(|y| + |r|).
//!
//! The composite runs through different kernels, so fused vs composite may differ by both
//! bounds: 2·T.

#![allow(clippy::too_many_arguments)] // case parameters are named one by one

mod common;

use common::harness::{compare, Tol};
use common::{block, expected_gemv_reduce, gemv_imps, gpu, random, seed};
use webformer::graph::LinearFusion;
use webformer::kernels::{self, KernelKey, Operand};
use webformer::{cpu, Activation, Context, CpuExecutor, DType, GpuExecutor, Graph, HostData, MatmulImpl, NodeId};

const EPS: f32 = 1e-5;

/// `w` stored as `dtype` (quantized with llama.cpp's reference quantizer).
fn weight_data(dtype: DType, w: &[f32]) -> HostData {
    match dtype {
        DType::F32 => HostData::F32(w.to_vec()),
        DType::F16 => HostData::F16(w.iter().map(|&v| half::f16::from_f32(v)).collect()),
        DType::Q8_0 | DType::Q4_1 => HostData::Quant { dtype, len: w.len(), bytes: cpu::quant::quantize(dtype, w) },
        DType::U32 => unreachable!("not a weight dtype"),
    }
}

/// What one case fuses.
#[derive(Clone, Copy, Debug)]
struct Fuse {
    rms: bool,
    swiglu: bool,
    bias: bool,
    act: Option<Activation>,
    residual: bool,
}

const fn fuse(rms: bool, swiglu: bool, bias: bool, act: Option<Activation>, residual: bool) -> Fuse {
    Fuse { rms, swiglu, bias, act, residual }
}

/// The combinations a Llama layer uses, and the others the op allows.
const FUSES: [Fuse; 7] = [
    fuse(false, false, false, None, true),                      // o / down + residual
    fuse(true, true, false, None, false),                       // norm + gate/up SwiGLU
    fuse(false, true, false, None, false),                      // SwiGLU alone
    fuse(true, false, false, None, false),                      // norm + projection (QKV)
    fuse(false, false, true, Some(Activation::GeluTanh), true), // bias, activation, residual
    fuse(true, false, true, Some(Activation::Silu), true),      // all but SwiGLU
    fuse(true, true, false, None, true),                        // all with SwiGLU
];

/// Host values of one case.
struct Data {
    x: Vec<f32>,
    w: HostData,
    up: HostData,
    gain: Vec<f32>,
    bias: Vec<f32>,
    res: Vec<f32>,
}

fn draw(seed: u64, m: usize, k: usize, n: usize, dtype: DType) -> Data {
    Data {
        x: random(seed, m * k, -1.0, 1.0),
        w: weight_data(dtype, &random(seed + 1, n * k, -1.0, 1.0)),
        up: weight_data(dtype, &random(seed + 2, n * k, -1.0, 1.0)),
        gain: random(seed + 3, k, 0.5, 1.5),
        bias: random(seed + 4, n, -1.0, 1.0),
        res: random(seed + 5, m * n, -1.0, 1.0),
    }
}

/// The graph: the fused node and its composite, both outputs.
fn build(d: &Data, m: usize, k: usize, n: usize, f: Fuse, imp: MatmulImpl) -> (Graph, NodeId, NodeId) {
    let mut g = Graph::new();
    let x = g.input("x", &[m, k], DType::F32).unwrap();
    let r = g.input("r", &[m, n], DType::F32).unwrap();
    let w = g.weight("w", &[n, k], d.w.clone()).unwrap();
    let up = g.weight("up", &[n, k], d.up.clone()).unwrap();
    let gain = g.weight("gain", &[k], d.gain.clone()).unwrap();
    let bias = g.weight("bias", &[n], d.bias.clone()).unwrap();
    let fusion = LinearFusion {
        bias: f.bias.then_some(bias),
        act: f.act,
        up: f.swiglu.then_some(up),
        rms: f.rms.then_some((gain, EPS)),
        residual: f.residual.then_some(r),
        imp,
    };
    let fused = g.linear_with(x, w, fusion).unwrap();
    let xn = if f.rms { g.rms_norm(x, gain, EPS).unwrap() } else { x };
    let mut y = if f.swiglu {
        let a = g.linear(xn, w, None, Some(Activation::Silu)).unwrap();
        let b = g.linear(xn, up, None, None).unwrap();
        g.mul(a, b).unwrap()
    } else {
        g.linear(xn, w, f.bias.then_some(bias), f.act).unwrap()
    };
    if f.residual {
        y = g.add(y, r).unwrap();
    }
    g.output(fused).unwrap();
    g.output(y).unwrap();
    (g, fused, y)
}

/// The per-element bound of the header for the fused output.
fn bound(d: &Data, m: usize, k: usize, n: usize, f: Fuse) -> Vec<f32> {
    let xn = if f.rms { cpu::norm::rms_norm(&d.x, &d.gain, k, EPS) } else { d.x.clone() };
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let (xs, ws, out) = ([m, k], [n, k], [m, n]);
    let c = if f.rms { 3.0 } else { 2.0 } * (k + 2) as f32 * f32::EPSILON;
    let product = |w: &HostData, bias: bool| {
        let w = w.to_f32();
        let mut p = cpu::matmul::matmul(&xn, &w, &xs, &ws, &out, true);
        let mut t: Vec<f32> = cpu::matmul::matmul(&abs(&xn), &abs(&w), &xs, &ws, &out, true);
        if bias {
            p = cpu::elementwise::add(&p, &d.bias);
            t = cpu::elementwise::add(&t, &abs(&d.bias));
        }
        (p, t.iter().map(|v| c * v).collect::<Vec<f32>>())
    };
    let (a, ta) = product(&d.w, f.bias);
    let (y, mut t) = if f.swiglu {
        let (b, tb) = product(&d.up, false);
        let s = cpu::elementwise::activation(&a, Activation::Silu);
        let y: Vec<f32> = s.iter().zip(&b).map(|(s, b)| s * b).collect();
        let t = (0..y.len()).map(|i| 1.1 * ta[i] * b[i].abs() + s[i].abs() * tb[i] + 1e-5 * y[i].abs() + 1e-6);
        (y.clone(), t.collect::<Vec<f32>>())
    } else if let Some(act) = f.act {
        let y = cpu::elementwise::activation(&a, act);
        let t = (0..y.len()).map(|i| 1.2 * ta[i] + 1e-5 * y[i].abs() + 1e-6).collect();
        (y, t)
    } else {
        (a, ta)
    };
    if f.residual {
        for i in 0..t.len() {
            t[i] += f32::EPSILON * (y[i].abs() + d.res[i].abs());
        }
    }
    t
}

/// The launches the node lowers to on this device.
fn launches(ctx: &Context, g: &Graph, y: NodeId) -> Vec<KernelKey> {
    let node = g.node(y);
    let ops: Vec<Operand> =
        node.inputs.iter().map(|i| Operand { shape: &g.node(*i).shape, dtype: g.node(*i).dtype }).collect();
    let low = kernels::lower(ctx, node.op().unwrap(), &ops, &node.shape).expect("lowering");
    low.dispatches.iter().map(|d| d.key).collect()
}

fn check_case(ctx: &Context, m: usize, k: usize, n: usize, dtype: DType, f: Fuse, imp: MatmulImpl, seed: u64) {
    let what = format!("fused linear {dtype} m={m} k={k} n={n} {f:?} {imp:?} (seed {seed}; WEBFORMER_SEED={seed})");
    let d = draw(seed, m, k, n, dtype);
    let (g, fused, composite) = build(&d, m, k, n, f, imp);
    if m == 1 {
        // Decode: one fused GEMV launch, whatever is fused.
        let keys = launches(ctx, &g, fused);
        match keys[..] {
            [KernelKey::GemvFused(v)] => {
                assert_eq!(v.reduce, expected_gemv_reduce(ctx, imp, dtype, k), "{what}: reduction")
            }
            _ => panic!("{what}: lowered to {keys:?}, not one fused GEMV"),
        }
    }
    let mut gpu = GpuExecutor::new(ctx, &g).unwrap_or_else(|e| panic!("{what}: plan: {e}"));
    gpu.poison_outputs();
    gpu.set_input("x", &d.x).unwrap();
    gpu.set_input("r", &d.res).unwrap();
    gpu.run().unwrap_or_else(|e| panic!("{what}: run: {e}"));
    let got = block(gpu.read(fused)).unwrap();
    let comp = block(gpu.read(composite)).unwrap();
    let mut cpu = CpuExecutor::new(&g);
    cpu.set_input("x", &HostData::F32(d.x.clone())).unwrap();
    cpu.set_input("r", &HostData::F32(d.res.clone())).unwrap();
    cpu.run().unwrap();
    let want = cpu.value(fused).unwrap().clone();
    let t = bound(&d, m, k, n, f);
    compare(&format!("{what}: vs the CPU reference"), &got, &want, &Tol::Bound(&|i, _| t[i]));
    compare(&format!("{what}: vs the composite on the GPU"), &got, &comp, &Tol::Bound(&|i, _| 2.0 * t[i]));
}

/// (k, n) for f32 / f16 weights: 1, odd, prime, not multiples of 4, SmolLM2's sizes.
const PLAIN_SHAPES: &[(usize, usize)] = &[(1, 1), (7, 33), (33, 7), (576, 576), (576, 1536), (1536, 576)];
/// (k, n) for quantized weights (k whole blocks of 32).
const QUANT_SHAPES: &[(usize, usize)] = &[(32, 1), (32, 7), (96, 33), (576, 576), (576, 1536), (1536, 576)];

fn dtypes(ctx: &Context) -> Vec<DType> {
    let mut v = vec![DType::F32, DType::Q8_0, DType::Q4_1];
    if ctx.has(wgpu::Features::SHADER_F16) {
        v.push(DType::F16);
    } else {
        eprintln!("f16 weights skipped: the adapter has no SHADER_F16");
    }
    v
}

/// Decode: one row, every fusion on every dtype and shape, both reductions.
#[test]
fn one_row_is_one_fused_gemv() {
    let Some(ctx) = gpu() else { return };
    let s = seed("fused_linear one row");
    let mut case = 0u64;
    for dtype in dtypes(&ctx) {
        let shapes = if dtype.is_quantized() { QUANT_SHAPES } else { PLAIN_SHAPES };
        for &(k, n) in shapes {
            for (i, &f) in FUSES.iter().enumerate() {
                // The forced trees on a rotating part of the cases (they share one body; on CPU
                // adapters Auto is the lanes kernel, elsewhere the subgroup or shared tree).
                let all = gemv_imps(&ctx);
                let imps = if i % 3 == case as usize % 3 { &all[..] } else { &all[..1] };
                for &imp in imps {
                    check_case(&ctx, 1, k, n, dtype, f, imp, s.wrapping_add(case * 16));
                    case += 1;
                }
            }
        }
    }
}

/// Prefill: several rows through the composite lowering (GEMM, subgroup GEMM or quantized
/// matmul), every fusion rotated over dtypes and shapes.
#[test]
fn several_rows_match_the_composite() {
    let Some(ctx) = gpu() else { return };
    let s = seed("fused_linear rows");
    let mut case = 0u64;
    for dtype in dtypes(&ctx) {
        let shapes = if dtype.is_quantized() { QUANT_SHAPES } else { PLAIN_SHAPES };
        for &(k, n) in shapes {
            // The f64 reference of 70 x 1536 x 576 is slow in a test build: big shapes take fewer rows.
            let ms: &[usize] = if k * n > 100_000 { &[3, 17] } else { &[3, 17, 70] };
            for &m in ms {
                let f = FUSES[case as usize % FUSES.len()];
                check_case(&ctx, m, k, n, dtype, f, MatmulImpl::Auto, s.wrapping_add(case * 16));
                case += 1;
            }
        }
    }
}

/// Shapes and dtypes that do not fit are refused with a sentence, not a panic.
#[test]
fn mismatched_operands_are_refused() {
    let mut g = Graph::new();
    let x = g.input("x", &[1, 8], DType::F32).unwrap();
    let w = g.weight("w", &[4, 8], vec![0f32; 32]).unwrap();
    let up = g.weight("up", &[5, 8], vec![0f32; 40]).unwrap();
    let gain = g.weight("gain", &[7], vec![1f32; 7]).unwrap();
    let r = g.input("r", &[1, 5], DType::F32).unwrap();
    let err = |f: LinearFusion, g: &mut Graph| g.linear_with(x, w, f).unwrap_err().to_string();
    let e = err(LinearFusion { up: Some(up), ..Default::default() }, &mut g);
    assert!(e.contains("up weight"), "{e}");
    let e = err(LinearFusion { rms: Some((gain, 1e-5)), ..Default::default() }, &mut g);
    assert!(e.contains("gain") && e.contains("[8]"), "{e}");
    let e = err(LinearFusion { residual: Some(r), ..Default::default() }, &mut g);
    assert!(e.contains("residual") && e.contains("[1, 4]"), "{e}");
    let e = err(LinearFusion { up: Some(w), act: Some(Activation::Relu), ..Default::default() }, &mut g);
    assert!(e.contains("SwiGLU"), "{e}");
}
