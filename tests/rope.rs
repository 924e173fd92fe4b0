//! Rotary embeddings against the f64 textbook formula: both pairings, several thetas, head
//! dims 2 to 130, positions up to 8192 from the runtime slot, outputs poisoned.
//!
//! Tolerance: |got - want| <= TOL · (|u| + |v|) for the pair (u, v) the element came from.
//! The shader's angle is exact integer turns reduced to [-pi, pi) and rounded to f32 once
//! (<= 3e-7 rad at any position); what remains is the backend's f32 sin/cos on [-pi, pi) and
//! two f32 products. Measured on lavapipe (llvmpipe 15): max error / (|u| + |v|) = 2.9e-7
//! over positions 0..8192, so TOL = 1e-6. For comparison, a naive f32 angle
//! (pos · powf(theta, -2i/d), f32 on the CPU) is off by up to 4.9e-4 rad there.

mod common;

use common::{block, gpu, random, seed};
use webformer::{cpu, Context, DType, Error, GpuExecutor, Graph, RopeMode};

const TOL: f32 = 1e-6;

/// Largest |got - want| / (|u| + |v|) over all elements.
fn rel_error(x: &[f32], shape: &[usize], mode: RopeMode, got: &[f32], want: &[f32]) -> f32 {
    let d = shape[2];
    let mut worst = 0f32;
    for j in 0..x.len() {
        let (head, e) = (j / d * d, j % d);
        let partner = match mode {
            RopeMode::Adjacent => head + (e ^ 1),
            RopeMode::Halves => head + (e + d / 2) % d,
        };
        let scale = x[j].abs() + x[partner].abs() + 1e-30;
        assert!(got[j].is_finite(), "rope {mode:?} {shape:?}: element {j} is {} (unwritten?)", got[j]);
        worst = worst.max((got[j] - want[j]).abs() / scale);
    }
    worst
}

fn graph(shape: &[usize], mode: RopeMode, theta: f32) -> (Graph, webformer::NodeId) {
    let mut g = Graph::new();
    let x = g.input("x", shape, DType::F32).unwrap();
    let y = g.rope(x, mode, theta, 2).unwrap();
    g.output(y).unwrap();
    (g, y)
}

fn check(ctx: &Context, shape: &[usize], mode: RopeMode, theta: f32, starts: &[u32], seed: u64) -> f32 {
    let x = random(seed, shape.iter().product(), -1.0, 1.0);
    let (g, y) = graph(shape, mode, theta);
    let mut exe = GpuExecutor::new(ctx, &g).unwrap();
    exe.set_input("x", &x).unwrap();
    let mut worst = 0f32;
    // One plan, replayed at several start positions (as decoding does).
    for &start in starts {
        exe.poison_outputs();
        exe.set_runtime_u32(2, start).unwrap();
        exe.run().unwrap();
        let got = block(exe.read(y)).unwrap().to_f32();
        let want = cpu::rope::rope(&x, shape, mode, theta, start);
        let e = rel_error(&x, shape, mode, &got, &want);
        assert!(e <= TOL, "rope {mode:?} {shape:?} theta {theta} start {start}: error {e:e} x (|u|+|v|) > {TOL:e}");
        worst = worst.max(e);
    }
    worst
}

#[test]
fn rope_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("rope");
    let mut worst = 0f32;
    for mode in [RopeMode::Adjacent, RopeMode::Halves] {
        for (k, shape) in
            [[1, 1, 2], [3, 2, 8], [13, 5, 6], [7, 3, 64], [5, 9, 64], [2, 1, 130], [17, 4, 128]].iter().enumerate()
        {
            for theta in [10000.0, 100000.0, 500000.0] {
                worst = worst.max(check(
                    &ctx,
                    shape,
                    mode,
                    theta,
                    &[0, 1 + (s % 4000) as u32, 8192 - shape[0] as u32],
                    s + k as u64,
                ));
            }
        }
    }
    eprintln!("rope: worst error {worst:e} x (|u|+|v|)");
}

#[test]
fn rope_error_up_to_position_8192() {
    // Every position 0..8192 once (128 tokens per run), head dim 128 (the widest common one).
    let Some(ctx) = gpu() else { return };
    let s = seed("rope positions");
    let starts: Vec<u32> = (0..64).map(|k| k * 128).collect();
    let mut worst = 0f32;
    for mode in [RopeMode::Adjacent, RopeMode::Halves] {
        worst = worst.max(check(&ctx, &[128, 1, 128], mode, 10000.0, &starts, s));
    }
    eprintln!("rope positions 0..8192: worst error {worst:e} x (|u|+|v|)");
}

#[test]
fn adjacent_and_halves_agree_under_the_gguf_permutation() {
    // llama.cpp's converter interleaves the halves of each head: element i goes to 2i and
    // element i + d/2 to 2i + 1. Rotating the permuted head by adjacent pairs must give the
    // permuted result of rotating by halves, bit for bit (same pairs, same angles).
    let Some(ctx) = gpu() else { return };
    let shape = [9, 3, 64];
    let d = shape[2];
    let x = random(seed("rope permutation"), shape.iter().product(), -1.0, 1.0);
    let perm = |v: &[f32]| -> Vec<f32> {
        let mut out = vec![0.0; v.len()];
        for (h, chunk) in v.chunks(d).enumerate() {
            for i in 0..d / 2 {
                out[h * d + 2 * i] = chunk[i];
                out[h * d + 2 * i + 1] = chunk[i + d / 2];
            }
        }
        out
    };
    let run = |mode: RopeMode, x: &[f32]| {
        let (g, y) = graph(&shape, mode, 100000.0);
        let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
        exe.poison_outputs();
        exe.set_input("x", x).unwrap();
        exe.set_runtime_u32(2, 4321).unwrap();
        exe.run().unwrap();
        block(exe.read(y)).unwrap().to_f32()
    };
    let halves = run(RopeMode::Halves, &x);
    let adjacent = run(RopeMode::Adjacent, &perm(&x));
    assert_eq!(adjacent, perm(&halves));
}

#[test]
fn rope_beyond_65535_workgroups() {
    // 16 777 000 pairs: more than 65535 workgroups of 256 (65535 · 256 = 16 776 960), in just
    // under the 128 MiB a storage binding may hold. Positions reach 2 097 128: the exact turn
    // arithmetic keeps the angle good there too. To keep lavapipe's time down the inputs come
    // from a cheap generator, every element is checked to be written (poisoned first), and
    // the reference covers every 97th token plus the last 40 000 (all of the wrapped row).
    let Some(ctx) = gpu() else { return };
    let shape = [2097125, 8, 2];
    let (tokens, per_token) = (shape[0], shape[1] * shape[2]);
    let start = 3;
    let x = webformer::bench::values(seed("rope wrapped grid"), tokens * per_token);
    let (g, y) = graph(&shape, RopeMode::Halves, 10000.0);
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("x", &x).unwrap();
    exe.set_runtime_u32(2, start).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    if let Some(i) = got.iter().position(|v| !v.is_finite()) {
        panic!("rope wrapped grid: element {i} was not written");
    }
    let tail = tokens - 40000;
    let checked = (0..tail).step_by(97).map(|t| (t, t + 1)).chain(std::iter::once((tail, tokens)));
    for (t0, t1) in checked {
        let range = t0 * per_token..t1 * per_token;
        let sub = [t1 - t0, shape[1], shape[2]];
        let want = cpu::rope::rope(&x[range.clone()], &sub, RopeMode::Halves, 10000.0, start + t0 as u32);
        let e = rel_error(&x[range.clone()], &sub, RopeMode::Halves, &got[range], &want);
        assert!(e <= TOL, "rope wrapped grid, tokens {t0}..{t1}: error {e:e} x (|u|+|v|) > {TOL:e}");
    }
}

#[test]
fn rope_rejects_bad_shapes() {
    let mut g = Graph::new();
    let x = g.input("x", &[4, 2, 7], DType::F32).unwrap();
    let e = g.rope(x, RopeMode::Adjacent, 10000.0, 0).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("even"), "{e}");
    let x2 = g.input("x2", &[4, 8], DType::F32).unwrap();
    assert!(g.rope(x2, RopeMode::Halves, 10000.0, 0).is_err());
    let x3 = g.input("x3", &[4, 2, 8], DType::F32).unwrap();
    let e = g.rope(x3, RopeMode::Halves, 1.0, 0).unwrap_err();
    assert!(e.to_string().contains("theta"), "{e}");
    assert!(matches!(g.rope(x3, RopeMode::Halves, 10000.0, 99), Err(Error::RuntimeSlot { .. })));
}
