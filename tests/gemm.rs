//! The tuned GEMM (kernels::gemm) against the CPU reference (cpu::matmul, accumulated in f64,
//! then cpu::gemm::epilogue: bias and activation as cpu::elementwise computes them): every
//! kernel the adapter can run (tiled always, subgroup where it has SUBGROUP), B stored [k, n]
//! and [n, k], shared by a batch or batched, f32 and f16 B, every epilogue, awkward sizes (1,
//! odd, prime, not multiples of any tile or of 4, k past one 32-step chunk), and more than 65535
//! workgroups. Fresh seeded inputs every run (seed printed; WEBFORMER_SEED replays), outputs
//! poisoned with NaN first.
//!
//! Tolerances, per element:
//! - product: |got - want| <= 2·k·eps·Σ|a||b| (eps = f32::EPSILON; the classic bound for a dot
//!   product accumulated in f32 in any order), want accumulated in f64.
//! - f16 B: the same bound, against the reference computed from the f16 values themselves
//!   (widening f16 to f32 is exact, so only the f32 accumulation differs).
//! - with bias and activation: that bound plus the rounding of the bias add (eps·|pre|), times
//!   1.2 (the steepest slope of the activations: GELU 1.13, SiLU 1.1, ReLU 1), plus the
//!   activation's own error vs f64 (rtol 1e-5, atol 1e-6, as in tests/kernels.rs).

mod common;

use std::sync::OnceLock;

use common::{block, random, seed};
use webformer::kernels::gemm::{self, Kernel};
use webformer::kernels::{self, KernelKey, Operand};
use webformer::{
    cpu, numel, Activation, Context, DType, Error, GpuExecutor, Graph, HostData, MatmulImpl, MatmulOptions, Op,
};

/// One context for every test of this file, so each GEMM pipeline is compiled once (on a CPU
/// adapter compiling the sixteen variants costs more than running the tests).
fn gpu() -> Option<Context> {
    static CTX: OnceLock<Option<Context>> = OnceLock::new();
    CTX.get_or_init(common::gpu).clone()
}

/// The forced implementations this adapter runs (Auto is covered by `auto_routes_to_gemm`).
fn kernels_here(ctx: &Context) -> Vec<MatmulImpl> {
    let mut v = vec![MatmulImpl::Tiled];
    match gemm::subgroup_support(ctx) {
        Ok(()) => v.push(MatmulImpl::Subgroup),
        Err(e) => {
            // Where CI requires subgroups, an adapter that has them but cannot run this kernel
            // (subgroups under 8 lanes) must fail the run rather than skip it.
            assert!(
                !common::required_features().iter().any(|f| f == "subgroups"),
                "WEBFORMER_REQUIRE_FEATURES names subgroups, but the subgroup GEMM cannot run: {e}"
            );
            eprintln!("SKIPPED subgroup GEMM on this adapter: {e}");
        }
    }
    v
}

/// One product: a [batch.., m, k] times b ([k, n] or [n, k], shared or batched).
#[derive(Clone, Copy, Debug)]
struct Case<'a> {
    batch: &'a [usize],
    m: usize,
    k: usize,
    n: usize,
    trans_b: bool,
    b_batched: bool,
}

impl Case<'_> {
    fn shapes(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let a: Vec<usize> = self.batch.iter().copied().chain([self.m, self.k]).collect();
        let tail = if self.trans_b { [self.n, self.k] } else { [self.k, self.n] };
        let b: Vec<usize> =
            if self.b_batched { self.batch.iter().copied().chain(tail).collect() } else { tail.to_vec() };
        let out: Vec<usize> = self.batch.iter().copied().chain([self.m, self.n]).collect();
        (a, b, out)
    }
}

/// Runs `case` with implementation `imp`, optional bias and activation, f32 or f16 B, and
/// checks every element against the reference within the bounds stated at the top.
fn check(
    ctx: &Context,
    imp: MatmulImpl,
    case: Case,
    b_dtype: DType,
    with_bias: bool,
    act: Option<Activation>,
    seed: u64,
) {
    let (a_shape, b_shape, out) = case.shapes();
    let a = random(seed, numel(&a_shape), -1.0, 1.0);
    let b_raw = random(seed + 1, numel(&b_shape), -1.0, 1.0);
    let bias = random(seed + 2, case.n, -1.0, 1.0);
    // The values the GPU sees: f16 B is rounded once on the host, and the reference uses exactly those.
    let (b_host, b) = match b_dtype {
        DType::F16 => {
            let h: Vec<half::f16> = b_raw.iter().map(|&x| half::f16::from_f32(x)).collect();
            let widened = h.iter().map(|x| x.to_f32()).collect();
            (HostData::F16(h), widened)
        }
        _ => (HostData::F32(b_raw.clone()), b_raw),
    };
    let mut g = Graph::new();
    let x = g.input("a", &a_shape, DType::F32).unwrap();
    let w = g.input("b", &b_shape, b_dtype).unwrap();
    let bn = if with_bias { Some(g.input("bias", &[case.n], DType::F32).unwrap()) } else { None };
    let y = g.matmul_with(x, w, MatmulOptions { trans_b: case.trans_b, bias: bn, act, imp }).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(ctx, &g).unwrap_or_else(|e| panic!("{imp:?} {case:?}: {e}"));
    exe.poison_outputs();
    exe.set_input("a", &a).unwrap();
    exe.set_input_host("b", &b_host).unwrap();
    if with_bias {
        exe.set_input("bias", &bias).unwrap();
    }
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();

    let bias_ref = with_bias.then_some(bias.as_slice());
    let product = cpu::matmul::matmul(&a, &b, &a_shape, &b_shape, &out, case.trans_b);
    let pre = cpu::gemm::epilogue(product.clone(), bias_ref, None);
    let want = cpu::gemm::epilogue(product, bias_ref, act);
    let mag = cpu::gemm::magnitude(&a, &b, &a_shape, &b_shape, &out, case.trans_b);
    let eps = f32::EPSILON;
    assert_eq!(got.len(), want.len());
    for i in 0..want.len() {
        let dot_bound = 2.0 * case.k as f32 * eps * mag[i];
        let tol = if with_bias || act.is_some() {
            1.2 * (dot_bound + eps * pre[i].abs()) + 1e-5 * want[i].abs() + 1e-6
        } else {
            dot_bound
        };
        assert!(
            (got[i] - want[i]).abs() <= tol,
            "{imp:?} {case:?} b {b_dtype} bias {with_bias} act {act:?}: element {i} of {out:?} is {}, reference {} (tolerance {tol}, seed {seed})",
            got[i],
            want[i]
        );
    }
}

/// Shapes (m, k, n) for the plain product: 1, odd, prime, smaller and larger than both tiles
/// (64 x 128 and 16 x 32), k not a multiple of 4 (scalar loads) and k a multiple of 4 with a
/// partial last 32-step (vector loads, then the checked tail), n a multiple of 4 or not.
const SHAPES: &[(usize, usize, usize)] =
    &[(1, 1, 1), (7, 13, 5), (67, 129, 33), (255, 63, 257), (64, 128, 128), (33, 40, 132), (17, 36, 20), (3, 576, 193)];

#[test]
fn gemm_f32_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemm f32");
    for imp in kernels_here(&ctx) {
        for (i, &(m, k, n)) in SHAPES.iter().enumerate() {
            for trans_b in [false, true] {
                check(
                    &ctx,
                    imp,
                    Case { batch: &[], m, k, n, trans_b, b_batched: false },
                    DType::F32,
                    false,
                    None,
                    s + i as u64,
                );
            }
        }
        // A batch of 3 sharing one B (weights), and batched B with two leading dimensions.
        for trans_b in [false, true] {
            check(
                &ctx,
                imp,
                Case { batch: &[3], m: 19, k: 23, n: 29, trans_b, b_batched: false },
                DType::F32,
                false,
                None,
                s + 100,
            );
            check(
                &ctx,
                imp,
                Case { batch: &[2, 3], m: 21, k: 44, n: 36, trans_b, b_batched: true },
                DType::F32,
                false,
                None,
                s + 101,
            );
        }
    }
}

#[test]
fn gemm_epilogues_match_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemm epilogues");
    let acts =
        [None, Some(Activation::GeluErf), Some(Activation::GeluTanh), Some(Activation::Silu), Some(Activation::Relu)];
    for imp in kernels_here(&ctx) {
        for (i, act) in acts.into_iter().enumerate() {
            for with_bias in [false, true] {
                if act.is_none() && !with_bias {
                    continue; // the plain product, tested above
                }
                // Unaligned and aligned shapes, each layout, one of them batched.
                check(
                    &ctx,
                    imp,
                    Case { batch: &[], m: 23, k: 37, n: 19, trans_b: true, b_batched: false },
                    DType::F32,
                    with_bias,
                    act,
                    s + i as u64,
                );
                check(
                    &ctx,
                    imp,
                    Case { batch: &[2], m: 40, k: 64, n: 36, trans_b: false, b_batched: false },
                    DType::F32,
                    with_bias,
                    act,
                    s + 10 + i as u64,
                );
            }
        }
    }
}

#[test]
fn gemm_f16_b_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemm f16");
    if !ctx.has(wgpu::Features::SHADER_F16) {
        // Without the feature the lowering must say so, not panic.
        let mut g = Graph::new();
        let x = g.input("a", &[4, 8], DType::F32).unwrap();
        let w = g.input("b", &[8, 8], DType::F16).unwrap();
        let y = g.matmul_t(x, w).unwrap();
        g.output(y).unwrap();
        match GpuExecutor::new(&ctx, &g) {
            Err(e) => assert!(e.to_string().contains("SHADER_F16"), "{e}"),
            Ok(_) => panic!("an f16 matmul was lowered on an adapter without SHADER_F16"),
        }
        // Refusal checked; a failure instead of a skip where CI requires shader-f16.
        assert!(!common::require_feature(&ctx, wgpu::Features::SHADER_F16, "shader-f16"));
        return;
    }
    for imp in kernels_here(&ctx) {
        for (i, &(m, k, n)) in [(1, 1, 1), (7, 13, 5), (67, 129, 33), (33, 40, 132)].iter().enumerate() {
            for trans_b in [false, true] {
                check(
                    &ctx,
                    imp,
                    Case { batch: &[], m, k, n, trans_b, b_batched: false },
                    DType::F16,
                    false,
                    None,
                    s + i as u64,
                );
            }
        }
        check(
            &ctx,
            imp,
            Case { batch: &[3], m: 19, k: 24, n: 29, trans_b: true, b_batched: true },
            DType::F16,
            false,
            None,
            s + 20,
        );
        check(
            &ctx,
            imp,
            Case { batch: &[], m: 45, k: 36, n: 70, trans_b: true, b_batched: false },
            DType::F16,
            true,
            Some(Activation::GeluTanh),
            s + 21,
        );
    }
}

#[test]
fn gemm_beyond_65535_workgroups() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gemm huge");
    if gemm::subgroup_support(&ctx).is_ok() {
        // 65537 column tiles of 32 (the subgroup kernel's tile width) in one row: the tile grid
        // wraps into a second dimension. Cheap: 1 x 3 x 2097157.
        check(
            &ctx,
            MatmulImpl::Subgroup,
            Case { batch: &[], m: 1, k: 3, n: 32 * 65536 + 5, trans_b: false, b_batched: false },
            DType::F32,
            false,
            None,
            s,
        );
    } else {
        // 65537 batches of one tile each. (Where the subgroup kernel runs, i.e. on CPU adapters,
        // this launch of the tiled kernel takes many seconds; the wrapping is shared code.)
        check(
            &ctx,
            MatmulImpl::Tiled,
            Case { batch: &[65537], m: 1, k: 3, n: 5, trans_b: true, b_batched: false },
            DType::F32,
            true,
            None,
            s,
        );
    }
}

/// Lowers a matmul node without running it.
fn lower(ctx: &Context, imp: MatmulImpl, b_dtype: DType) -> webformer::Result<kernels::Dispatch> {
    let op =
        Op::Matmul(webformer::graph::MatmulParams { trans_b: true, bias: false, act: None, imp, ..Default::default() });
    let (a, b, out) = ([5usize, 8], [6usize, 8], [5usize, 6]);
    let inputs = [Operand { shape: &a, dtype: DType::F32 }, Operand { shape: &b, dtype: b_dtype }];
    kernels::lower(ctx, &op, &inputs, &out).map(|l| l.dispatches[0].clone())
}

#[test]
fn auto_routes_to_gemm() {
    let Some(ctx) = gpu() else { return };
    let cpu_adapter = ctx.adapter().device_type == "Cpu";
    let expected = if cpu_adapter && gemm::subgroup_support(&ctx).is_ok() { Kernel::Subgroup } else { Kernel::Tiled };
    match lower(&ctx, MatmulImpl::Auto, DType::F32).unwrap().key {
        KernelKey::Gemm(v) => assert_eq!((v.kernel, v.b, v.trans_b), (expected, DType::F32, true)),
        other => panic!("Auto with f32 b lowered to {other:?}"),
    }
    assert!(
        matches!(lower(&ctx, MatmulImpl::Naive, DType::F32).unwrap().key, KernelKey::Matmul(_)),
        "Naive must stay the baseline"
    );
    match lower(&ctx, MatmulImpl::Auto, DType::F16) {
        Ok(d) => assert!(matches!(d.key, KernelKey::Gemm(v) if v.b == DType::F16 && v.kernel == expected)),
        Err(e) => {
            assert!(!ctx.has(wgpu::Features::SHADER_F16), "f16 lowering failed on an adapter with SHADER_F16: {e}");
            assert!(matches!(e, Error::Feature { feature: "SHADER_F16", .. }), "{e}");
        }
    }
    // The naive kernel has no f16 path: a sentence, not a panic.
    let e = lower(&ctx, MatmulImpl::Naive, DType::F16).unwrap_err();
    assert!(e.to_string().contains("naive matmul"), "{e}");
    // Forcing the subgroup kernel where it cannot run names what is missing.
    if let Err(why) = gemm::subgroup_support(&ctx) {
        let e = lower(&ctx, MatmulImpl::Subgroup, DType::F32).unwrap_err();
        assert_eq!(e.to_string(), why.to_string());
    }
}

#[test]
fn subgroup_gemm_runs_only_where_the_workgroup_fits_one_subgroup() {
    // The kernel's 8-invocation workgroup must be one subgroup: the adapter's smallest
    // subgroup must hold 8 lanes. Checked here from the adapter's own report, not through the
    // library's guard. On lavapipe, LP_NATIVE_VECTOR_WIDTH=128 / 256 / 512 / 1024 / 2048 gives
    // subgroups of 4 / 8 / 16 / 32 / 64: the whole file passes at each, the subgroup kernel
    // refused at 4 and run (against the reference) at the others.
    let Some(ctx) = gpu() else { return };
    let a = ctx.adapter();
    let [min, max] = a.subgroup_size;
    let fits = ctx.has(wgpu::Features::SUBGROUP) && min >= 8;
    let support = gemm::subgroup_support(&ctx);
    assert_eq!(support.is_ok(), fits, "subgroup sizes {min}..{max}, SUBGROUP {}: {support:?}", a.subgroups);
    let auto = match lower(&ctx, MatmulImpl::Auto, DType::F32).unwrap().key {
        KernelKey::Gemm(v) => v.kernel,
        other => panic!("Auto with f32 b lowered to {other:?}"),
    };
    let cpu_adapter = a.device_type == "Cpu";
    assert_eq!(auto == Kernel::Subgroup, fits && cpu_adapter, "Auto at subgroup sizes {min}..{max} on {}", a.name);
    match lower(&ctx, MatmulImpl::Subgroup, DType::F32) {
        Ok(d) => {
            assert!(fits, "the subgroup kernel was lowered at subgroup sizes {min}..{max}");
            assert!(matches!(d.key, KernelKey::Gemm(v) if v.kernel == Kernel::Subgroup));
            // Every lane's broadcast matters: k = 100 is three whole 32-step chunks and a
            // partial one, n = 37 two column tiles (the second with 5 columns).
            let s = seed("gemm subgroup sizes");
            for (m, k, n) in [(19, 100, 37), (1, 32, 8)] {
                for trans_b in [false, true] {
                    let case = Case { batch: &[], m, k, n, trans_b, b_batched: false };
                    check(&ctx, MatmulImpl::Subgroup, case, DType::F32, false, None, s + k as u64);
                }
            }
            eprintln!("subgroup GEMM checked at subgroup sizes {min}..{max} ({})", a.name);
        }
        Err(e) if !ctx.has(wgpu::Features::SUBGROUP) => assert!(e.to_string().contains("SUBGROUP"), "{e}"),
        Err(e) => {
            assert!(!fits);
            let msg = e.to_string();
            assert!(msg.contains("at least 8") && msg.contains(&format!("sizes {min} to {max}")), "{msg}");
        }
    }
}
