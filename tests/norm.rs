//! LayerNorm and RMSNorm against their f64 references: fresh seeded inputs, row lengths 1, odd,
//! prime, 576 and 768 (SmolLM2, BERT), > 1024, rows beyond 65535 workgroups, outputs poisoned.
//!
//! Tolerances (f32 kernels vs f64 references):
//! - rms_norm: every output is x·inv·w with inv = 1/sqrt(mean(x²) + eps); the f32 sum of
//!   squares (ceil(n/256) terms per invocation, then two chains of 16) is off by at most
//!   (n/256 + 32)·2^-24 relative (2.9e-6 at n = 4099), half of that reaches inv, plus a few
//!   ulps of products: |got - want| <= 2e-6·|want| + 1e-7. Measured on lavapipe: <= 2.6e-7.
//! - layer_norm: (x - mean)·inv·w + b; the two terms can cancel, so the bound is relative to
//!   their magnitudes: |got - want| <= 3e-6·(|x̂·w| + |b|) + 3e-7 (the mean's and the
//!   variance's sum errors, each bounded as for rms_norm, plus a few ulps). Measured on
//!   lavapipe: at most 0.3 of that bound. The same bound holds for rows
//!   like 1000 + noise (mean by shifted sums, variance two-pass), where E[x²] - E[x]² would lose
//!   every digit.

mod common;

use common::harness::{check, given, OpTest, Tol};
use common::{assert_close, block, gpu, random, seed};
use webformer::{Context, DType, Error, GpuExecutor, Graph, HostData};

#[allow(clippy::too_many_arguments)]
fn run_norm(ctx: &Context, rms: bool, rows: usize, n: usize, x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let mut g = Graph::new();
    let xi = g.input("x", &[rows, n], DType::F32).unwrap();
    let wi = g.weight("w", &[n], w.to_vec()).unwrap();
    let y = if rms {
        g.rms_norm(xi, wi, eps).unwrap()
    } else {
        let bi = g.weight("b", &[n], b.to_vec()).unwrap();
        g.layer_norm(xi, wi, bi, eps).unwrap()
    };
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("x", x).unwrap();
    exe.run().unwrap();
    block(exe.read(y)).unwrap().to_f32()
}

fn check_norms(ctx: &Context, rows: usize, n: usize, offset: f32, seed: u64) {
    let x: Vec<f32> = random(seed, rows * n, -4.0, 4.0).iter().map(|v| v + offset).collect();
    let (w, b) = (random(seed + 1, n, -2.0, 2.0), random(seed + 2, n, -2.0, 2.0));
    let eps = 1e-5;
    let inputs = |with_b: bool| {
        let mut v = vec![given("x", &[rows, n], HostData::F32(x.clone())), given("w", &[n], HostData::F32(w.clone()))];
        if with_b {
            v.push(given("b", &[n], HostData::F32(b.clone())));
        }
        v
    };
    let t = OpTest {
        what: format!("rms_norm [{rows}, {n}] offset {offset}"),
        inputs: inputs(false),
        runtime: vec![],
        tol: Tol::Rel { rtol: 2e-6, atol: 1e-7 },
    };
    let ran = check(ctx, &t, seed, |g, v| g.rms_norm(v[0], v[1], eps));
    let (got, want) = (ran.gpu.to_f32(), ran.cpu.to_f32());
    let rel = got.iter().zip(&want).map(|(g, r)| (g - r).abs() / r.abs().max(1e-30)).fold(0f32, f32::max);

    // (x̂·w) and b can cancel: the bound is relative to their magnitudes.
    let tol = |i: usize, r: f32| 3e-6 * ((r - b[i % n]).abs() + b[i % n].abs()) + 3e-7;
    let t = OpTest {
        what: format!("layer_norm [{rows}, {n}] offset {offset}"),
        inputs: inputs(true),
        runtime: vec![],
        tol: Tol::Bound(&tol),
    };
    let ran = check(ctx, &t, seed, |g, v| g.layer_norm(v[0], v[1], v[2], eps));
    let (got, want) = (ran.gpu.to_f32(), ran.cpu.to_f32());
    let worst = got.iter().zip(&want).enumerate().map(|(i, (g, r))| (g - r).abs() / tol(i, *r)).fold(0f32, f32::max);
    eprintln!("[{rows}, {n}] offset {offset}: rms_norm max relative error {rel:.2e}; layer_norm max error / tolerance {worst:.2}");
}

#[test]
fn norms_match_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("norms");
    for (k, &(rows, n)) in
        [(1, 1), (3, 2), (5, 7), (2, 97), (1, 255), (7, 256), (4, 257), (9, 576), (3, 768), (2, 1031), (1, 4099)]
            .iter()
            .enumerate()
    {
        check_norms(&ctx, rows, n, 0.0, s + k as u64);
    }
    // A large common offset: mean and variance must not cancel catastrophically.
    check_norms(&ctx, 5, 768, 1000.0, s + 100);
    check_norms(&ctx, 3, 1031, -300.0, s + 101);
}

#[test]
fn norms_beyond_65535_rows() {
    let Some(ctx) = gpu() else { return };
    check_norms(&ctx, 65537, 3, 0.0, seed("norms wrapped grid"));
}

#[test]
fn norm_rows_are_independent_of_scale() {
    // RMSNorm(c·x) = RMSNorm(x) for eps = 0; a quick invariant on top of the reference check.
    let Some(ctx) = gpu() else { return };
    let s = seed("rms scale");
    let n = 577;
    let x = random(s, n, -1.0, 1.0);
    let w = random(s + 1, n, 0.5, 1.5);
    let a = run_norm(&ctx, true, 1, n, &x, &w, &[], 0.0);
    let big: Vec<f32> = x.iter().map(|v| v * 1024.0).collect();
    let b = run_norm(&ctx, true, 1, n, &big, &w, &[], 0.0);
    assert_close("rms_norm of 1024·x vs x", &b, &a, 1e-5, 1e-7);
}

#[test]
fn builders_reject_bad_shapes() {
    let mut g = Graph::new();
    let x = g.input("x", &[4, 8], DType::F32).unwrap();
    let w7 = g.weight("w7", &[7], vec![1.0f32; 7]).unwrap();
    let w8 = g.weight("w8", &[8], vec![1.0f32; 8]).unwrap();
    let e = g.rms_norm(x, w7, 1e-6).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("[8]"), "{e}");
    let e = g.layer_norm(x, w8, w7, 1e-6).unwrap_err();
    assert!(e.to_string().contains("bias"), "{e}");
    let e = g.rms_norm(x, w8, f32::NAN).unwrap_err();
    assert!(e.to_string().contains("eps"), "{e}");
    let ids = g.input("ids", &[4], DType::U32).unwrap();
    assert!(matches!(g.rms_norm(ids, w8, 1e-6), Err(Error::DType { .. })));
    assert!(g.rms_norm(x, w8, 1e-6).is_ok());
}
