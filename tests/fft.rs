//! FFT: the f64 CPU reference against rustfft and a naive O(n²) DFT; the GPU kernels (the
//! `fft` and `fourier_mix` graph ops) against the CPU reference on fresh seeded inputs, with
//! outputs poisoned first.
//!
//! Tolerances are on the largest error relative to the largest output magnitude (an FFT's
//! rounding is spread over all outputs, so a per-element relative bound means nothing for
//! outputs near zero):
//! - CPU reference (f64) vs rustfft (f64) and the naive DFT: 1e-12. Both sides are O(ε·log n)
//!   accurate relative to the norm (ε = 1.1e-16); 1e-12 is ~700 ε at n = 4096 and still
//!   catches any wrong twiddle or index (errors of order 1).
//! - GPU (f32) vs f64 reference: each radix pass rounds by a few ε₃₂ (6e-8) relative to the
//!   norm, and the twiddles are exact to ~1 ulp (integer angle reduction), so the error grows
//!   like ε₃₂·log2(n). Bluestein runs three transforms of m ≈ 2n to 4n points: log2(m) + 2.
//!   Bound: 4e-7 · (log2(n) + 2) relative to max|X|, with an extra log2(m) for Bluestein
//!   lengths; see `gpu_tol`.

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustfft::num_complex::Complex64;
use webformer::cpu::fft::{dft_naive, fft, fft_axis, fnet_mixing, C64};

/// The lengths every test covers: powers of 2, 3 and 5, FNet's 768 = 3·2⁸, 1000 = 2³·5³, and
/// primes (1009 goes through Bluestein).
const LENGTHS: &[usize] = &[1, 2, 3, 5, 7, 12, 64, 96, 768, 1000, 4096, 1009];

fn random_c64(seed: u64, n: usize) -> Vec<C64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| C64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0))).collect()
}

/// max |got - want| / max |want| (0/0 = 0).
fn rel_err(got: &[C64], want: &[C64]) -> f64 {
    let scale = want.iter().map(|v| v.re.hypot(v.im)).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    got.iter().zip(want).map(|(g, w)| (g.re - w.re).hypot(g.im - w.im)).fold(0.0, f64::max) / scale
}

fn rustfft(x: &[C64], inverse: bool) -> Vec<C64> {
    let mut planner = rustfft::FftPlanner::<f64>::new();
    let plan = if inverse { planner.plan_fft_inverse(x.len()) } else { planner.plan_fft_forward(x.len()) };
    let mut buf: Vec<Complex64> = x.iter().map(|v| Complex64::new(v.re, v.im)).collect();
    plan.process(&mut buf);
    // rustfft does not normalise its inverse; ours divides by n.
    let s = if inverse { 1.0 / x.len() as f64 } else { 1.0 };
    buf.iter().map(|v| C64::new(v.re * s, v.im * s)).collect()
}

const CPU_TOL: f64 = 1e-12;

#[test]
fn reference_matches_rustfft_and_naive_dft() {
    let seed = common::seed("reference_matches_rustfft_and_naive_dft");
    for (i, &n) in LENGTHS.iter().enumerate() {
        let x = random_c64(seed + i as u64, n);
        for inverse in [false, true] {
            let ours = fft(&x, inverse);
            let e1 = rel_err(&ours, &rustfft(&x, inverse));
            let e2 = rel_err(&ours, &dft_naive(&x, inverse));
            assert!(e1 <= CPU_TOL, "n = {n}, inverse = {inverse}: vs rustfft {e1:e}");
            assert!(e2 <= CPU_TOL, "n = {n}, inverse = {inverse}: vs naive DFT {e2:e}");
            let back = fft(&ours, !inverse);
            let e3 = rel_err(&back, &x);
            assert!(e3 <= CPU_TOL, "n = {n}: round trip {e3:e}");
        }
    }
}

#[test]
fn reference_batches_along_either_axis() {
    let seed = common::seed("reference_batches_along_either_axis");
    for &(rows, cols) in &[(3usize, 7usize), (12, 5), (4, 96), (1009, 2)] {
        let x = random_c64(seed, rows * cols);
        for axis in 0..2 {
            let got = fft_axis(&x, &[rows, cols], axis, false);
            // Each line along the axis, transformed alone by rustfft.
            let (n, lines) = if axis == 0 { (rows, cols) } else { (cols, rows) };
            let at = |line: usize, j: usize| if axis == 0 { j * cols + line } else { line * cols + j };
            for line in 0..lines {
                let row: Vec<C64> = (0..n).map(|j| x[at(line, j)]).collect();
                let want = rustfft(&row, false);
                let g: Vec<C64> = (0..n).map(|j| got[at(line, j)]).collect();
                let e = rel_err(&g, &want);
                assert!(e <= CPU_TOL, "[{rows}, {cols}] axis {axis} line {line}: {e:e}");
            }
        }
    }
}

#[test]
fn reference_mixing_is_the_real_part_of_the_2d_transform() {
    let seed = common::seed("reference_mixing_is_the_real_part_of_the_2d_transform");
    let (b, l, d) = (2, 7, 12);
    let x = common::random(seed, b * l * d, -1.0, 1.0);
    let got = fnet_mixing(&x, &[b, l, d]);
    // Direct 2-D DFT sum for each output.
    for bi in 0..b {
        for k1 in 0..l {
            for k2 in 0..d {
                let mut acc = 0.0f64;
                for j1 in 0..l {
                    for j2 in 0..d {
                        let t = std::f64::consts::TAU * ((j1 * k1) as f64 / l as f64 + (j2 * k2) as f64 / d as f64);
                        acc += x[(bi * l + j1) * d + j2] as f64 * t.cos();
                    }
                }
                let g = got[(bi * l + k1) * d + k2] as f64;
                assert!((g - acc).abs() <= 1e-5 * (1.0 + acc.abs()), "({bi}, {k1}, {k2}): {g} vs {acc}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// GPU

use common::{block, gpu};
use webformer::cpu::fft::{from_interleaved, to_interleaved};
use webformer::graph::MixImpl;
use webformer::{Context, GpuExecutor, Graph, NodeId};

/// Runs `g` on input "x", outputs poisoned with NaN first; returns the values of `ys`.
fn run(ctx: &Context, g: &Graph, x: &[f32], ys: &[NodeId]) -> Vec<Vec<f32>> {
    let mut exe = GpuExecutor::new(ctx, g).expect("executor");
    exe.poison_outputs();
    exe.set_input("x", x).expect("input");
    exe.run().expect("run");
    ys.iter().map(|y| block(exe.read(*y)).expect("read").to_f32()).collect()
}

/// max |got - want| / max |want| over f32 values; any non-finite value (an unwritten,
/// poisoned element) counts as infinitely wrong.
fn rel_err_f32(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    if got.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let scale = want.iter().map(|v| v.abs() as f64).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    got.iter().zip(want).map(|(g, w)| (*g as f64 - *w as f64).abs()).fold(0.0, f64::max) / scale
}

/// The f32 error bound of an n-point transform relative to its largest output (see the file
/// header): 4e-7 per pass level (a few f32 roundings), log2(n) + 2 levels; Bluestein lengths
/// (other prime factors) run three transforms of m = 2^ceil(log2(2n - 1)) points plus the
/// chirp products.
fn gpu_tol(n: usize) -> f64 {
    let levels = |n: usize| (n as f64).log2() + 2.0;
    if webformer::kernels::fft::radices(n).is_some() {
        4e-7 * levels(n)
    } else {
        4e-7 * 3.0 * levels((2 * n - 1).next_power_of_two())
    }
}

/// Complex [.., 2] data transformed along `axis` on the GPU, forward then inverse, against the
/// f64 reference and the input.
fn check_complex(ctx: &Context, seed: u64, shape: &[usize], axis: usize) {
    let n_el: usize = shape.iter().product();
    let x = common::random(seed, n_el, -1.0, 1.0);
    let mut g = Graph::new();
    let xi = g.input("x", shape, webformer::DType::F32).unwrap();
    let y = g.fft(xi, axis, false).unwrap();
    let z = g.fft(y, axis, true).unwrap();
    g.output(y).unwrap();
    g.output(z).unwrap();
    let out = run(ctx, &g, &x, &[y, z]);
    let dims = &shape[..shape.len() - 1];
    let want = to_interleaved(&fft_axis(&from_interleaved(&x), dims, axis, false));
    let n = dims[axis];
    let (e_fwd, e_back) = (rel_err_f32(&out[0], &want), rel_err_f32(&out[1], &x));
    let tol = gpu_tol(n);
    eprintln!("fft {shape:?} axis {axis}: forward {e_fwd:.2e}, round trip {e_back:.2e} (tol {tol:.2e})");
    assert!(e_fwd <= tol, "fft {shape:?} axis {axis}: forward error {e_fwd:e} > {tol:e}");
    assert!(e_back <= 2.0 * tol, "fft {shape:?} axis {axis}: round-trip error {e_back:e} > {:e}", 2.0 * tol);
}

#[test]
fn gpu_fft_rows_every_length() {
    let Some(ctx) = gpu() else { return };
    let seed = common::seed("gpu_fft_rows_every_length");
    for (i, &n) in LENGTHS.iter().enumerate() {
        check_complex(&ctx, seed + i as u64, &[3, n, 2], 1);
    }
}

#[test]
fn gpu_fft_columns_every_length() {
    let Some(ctx) = gpu() else { return };
    let seed = common::seed("gpu_fft_columns_every_length");
    for (i, &n) in LENGTHS.iter().enumerate() {
        check_complex(&ctx, seed + i as u64, &[n, 3, 2], 0);
    }
}

#[test]
fn gpu_fft_middle_axis_of_a_3d_array() {
    let Some(ctx) = gpu() else { return };
    let seed = common::seed("gpu_fft_middle_axis_of_a_3d_array");
    for (i, &n) in [7usize, 12, 96].iter().enumerate() {
        check_complex(&ctx, seed + i as u64, &[2, n, 5, 2], 1);
    }
}

#[test]
fn gpu_fourier_mix_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let seed = common::seed("gpu_fourier_mix_matches_reference");
    // Odd and even widths (the mirrored columns of the real-input path: d = 1, 2, 3, 5, 9, 11, 12, 36,
    // 768), odd and even row counts (rows are transformed in pairs over the hidden axis),
    // batches, lengths through workgroup memory, global passes (4096 over the sequence, 3000
    // over the hidden axis) and Bluestein (1031, 17, 11).
    let shapes = [
        vec![7, 12],
        vec![2, 13, 36],
        vec![1, 1, 1],
        vec![2, 64, 768],
        vec![1, 1031, 5],
        vec![1, 4096, 3],
        vec![3, 17, 11],
        vec![2, 6, 2],
        vec![2, 1, 9],
        vec![1, 3, 3000],
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let x = common::random(seed + i as u64, shape.iter().product(), -1.0, 1.0);
        let want = fnet_mixing(&x, shape);
        let r = shape.len();
        for imp in [MixImpl::Fft, MixImpl::Dft] {
            let mut g = Graph::new();
            let xi = g.input("x", shape, webformer::DType::F32).unwrap();
            let y = g.fourier_mix_with(xi, imp).unwrap();
            g.output(y).unwrap();
            let got = &run(&ctx, &g, &x, &[y])[0];
            // Two transforms in sequence: their bounds add. The DFT path's two GEMMs sum
            // D and 2L products per output, in f32 like the FFT's passes but without the
            // logarithmic depth: its rounding is that of a length-k dot product, under
            // 4e-7·(log2(k) + 2) of the largest output as well for the lengths here.
            let tol = gpu_tol(shape[r - 2]) + gpu_tol(shape[r - 1]);
            let e = rel_err_f32(got, &want);
            eprintln!("fourier_mix {imp:?} {shape:?}: {e:.2e} (tol {tol:.2e})");
            assert!(e <= tol, "fourier_mix {imp:?} {shape:?}: error {e:e} > {tol:e}");
        }
    }
}

#[test]
fn fft_builders_name_what_is_wrong() {
    let mut g = Graph::new();
    let x = g.input("x", &[4, 3], webformer::DType::F32).unwrap();
    let e = g.fft(x, 0, false).unwrap_err().to_string();
    assert!(e.contains("[.., 2]"), "{e}");
    let v = g.input("v", &[5], webformer::DType::F32).unwrap();
    let e = g.fourier_mix(v).unwrap_err().to_string();
    assert!(e.contains("[L, D]"), "{e}");
    let ids = g.input("ids", &[4, 3], webformer::DType::U32).unwrap();
    assert!(g.fourier_mix(ids).is_err());
}
