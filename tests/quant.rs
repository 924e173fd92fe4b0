//! GGUF block quantization: the CPU reference against hand-computed blocks and the GGUF spec,
//! the GPU repacking that keeps every bit, and quantized matmuls on the GPU, over blocks whose
//! scales vary as in real checkpoints (2^U(-8, 8), zero, f16 subnormals).

mod common;

use half::f16;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webformer::cpu::quant::{dequantize, quantize};
use webformer::kernels::quant::{gpu_bytes, plane_words, repack};
use webformer::{DType, GpuExecutor, Graph, HostData};

#[test]
fn q8_0_block_by_hand() {
    let mut block = f16::from_f32(0.5).to_le_bytes().to_vec();
    block.extend((0..32).map(|i| (i as i8 - 16) as u8));
    let x = dequantize(DType::Q8_0, &block, 32);
    for (i, v) in x.iter().enumerate() {
        assert_eq!(*v, (i as f32 - 16.0) * 0.5);
    }
}

#[test]
fn q4_1_block_by_hand() {
    let mut block = f16::from_f32(0.25).to_le_bytes().to_vec();
    block.extend(f16::from_f32(-1.0).to_le_bytes());
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let x = dequantize(DType::Q4_1, &block, 32);
    for j in 0..16 {
        assert_eq!(x[j], j as f32 * 0.25 - 1.0, "low nibble {j}");
        assert_eq!(x[j + 16], (15 - j) as f32 * 0.25 - 1.0, "high nibble {j}");
    }
}

#[test]
fn quantize_round_trip_error_is_within_half_a_step() {
    let x: Vec<f32> = (0..96).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    for dtype in [DType::Q8_0, DType::Q4_1] {
        let q = quantize(dtype, &x);
        assert_eq!(q.len(), dtype.bytes_for(x.len()));
        let y = dequantize(dtype, &q, x.len());
        for (blk, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let (lo, hi) = xs.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let step = match dtype {
                DType::Q8_0 => lo.abs().max(hi.abs()) / 127.0,
                _ => (hi - lo) / 15.0,
            };
            for (a, b) in xs.iter().zip(ys) {
                assert!(
                    (a - b).abs() <= 0.5 * step * 1.01 + 1e-3 * step,
                    "{dtype} block {blk}: {a} -> {b} (step {step})"
                );
            }
        }
    }
}

#[test]
fn repack_keeps_every_value() {
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    for (dtype, qbytes) in [(DType::Q8_0, 32), (DType::Q4_1, 16)] {
        let q = quantize(dtype, &x);
        let r = repack(dtype, &q, 64);
        assert_eq!(r.len(), gpu_bytes(dtype, 64));
        let block = dtype.bytes_for(32);
        for b in 0..2 {
            let src = &q[b * block..][..block];
            let scales = block - qbytes;
            assert_eq!(&r[b * qbytes..][..qbytes], &src[scales..], "{dtype} quants of block {b}");
            let (d_word, m_word) = plane_words(dtype, 2);
            assert_eq!(d_word * 4, 2 * qbytes, "{dtype}: the d plane follows the quants");
            let d = f32::from_le_bytes(r[4 * d_word + 4 * b..][..4].try_into().unwrap());
            assert_eq!(d, f16::from_le_bytes([src[0], src[1]]).to_f32(), "{dtype} scale of block {b}");
            if dtype == DType::Q4_1 {
                let m = f32::from_le_bytes(r[4 * m_word + 4 * b..][..4].try_into().unwrap());
                assert_eq!(m, f16::from_le_bytes([src[2], src[3]]).to_f32(), "{dtype} min of block {b}");
            }
        }
        // Padded with zeros to whole 16-byte words, so kernels can read it as array<vec4<u32>>.
        assert_eq!(r.len() % 16, 0, "{dtype}: GPU size {}", r.len());
        let used = 2 * (qbytes + if dtype == DType::Q4_1 { 8 } else { 4 });
        assert!(r[used..].iter().all(|&b| b == 0), "{dtype}: padding");
    }
    // Odd block counts need padding too (3 Q8_0 blocks = 108 bytes -> 112).
    assert_eq!(gpu_bytes(DType::Q8_0, 96), 112);
    assert_eq!(repack(DType::Q8_0, &quantize(DType::Q8_0, &x[..32].repeat(3)), 96).len(), 112);
}

// ---------------------------------------------------------------------------------------------
// Varied block scales. One uniform range of values gives every block nearly the same scale, so
// a kernel or reader that takes a neighbouring block's scale would still pass. Here each block
// draws its own: 2^U(-8, 8) (normal f16), exactly zero, or an f16 subnormal.

/// The f16 bits of a block scale of kind `b % 8`: 0 -> zero, 1 -> a random subnormal,
/// otherwise 2^U(-8, 8) with a random mantissa; the sign is random for Q4_1's minimum.
fn scale_bits(rng: &mut StdRng, b: usize, signed: bool) -> u16 {
    let sign = if signed && rng.random_bool(0.5) { 0x8000 } else { 0 };
    match b % 8 {
        0 => 0,
        1 => sign | rng.random_range(1u16..0x400),
        _ => sign | f16::from_f32(2f32.powf(rng.random_range(-8.0..8.0))).to_bits(),
    }
}

/// `blocks` random blocks of `dtype` with varied scales (and minimums), as raw bytes.
fn varied_blocks(dtype: DType, blocks: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for b in 0..blocks {
        out.extend(scale_bits(&mut rng, b, false).to_le_bytes());
        if dtype == DType::Q4_1 {
            // The minimum's kind is independent of the scale's (b / 8 shifts it).
            out.extend(scale_bits(&mut rng, b / 8 + b, true).to_le_bytes());
        }
        let quants = if dtype == DType::Q8_0 { 32 } else { 16 };
        out.extend((0..quants).map(|_| rng.random::<u8>()));
    }
    out
}

/// The GGUF spec's dequantization, written out here: Q8_0 x = d·q (q a signed byte), Q4_1
/// x = d·q + m (q the low nibbles for elements 0..16, the high ones for 16..32), d and m f16.
fn spec_dequantize(dtype: DType, bytes: &[u8]) -> Vec<f64> {
    let h = |b: &[u8], at: usize| f16::from_le_bytes([b[at], b[at + 1]]).to_f64();
    let mut out = Vec::new();
    for b in bytes.chunks(dtype.bytes_for(32)) {
        if dtype == DType::Q8_0 {
            out.extend(b[2..].iter().map(|&q| h(b, 0) * (q as i8) as f64));
        } else {
            out.extend(b[4..].iter().map(|&q| h(b, 0) * (q & 15) as f64 + h(b, 2)));
            out.extend(b[4..].iter().map(|&q| h(b, 0) * (q >> 4) as f64 + h(b, 2)));
        }
    }
    out
}

#[test]
fn dequantize_varied_scales_as_the_spec_says() {
    let s = common::seed("varied scales dequantize");
    for dtype in [DType::Q8_0, DType::Q4_1] {
        let blocks = 257;
        let bytes = varied_blocks(dtype, blocks, s);
        let got = dequantize(dtype, &bytes, blocks * 32);
        let want = spec_dequantize(dtype, &bytes);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            // d·q + m in f32: one product of exact factors (q < 2^8, d with 11 bits: exact in
            // f32) and one rounded sum, so |error| <= 2^-24 |w| when Q4_1 adds m; Q8_0 is exact.
            let tol = if dtype == DType::Q8_0 { 0.0 } else { w.abs() * 2f64.powi(-24) };
            assert!((g as f64 - w).abs() <= tol, "{dtype} block {} element {}: {g} vs spec {w}", i / 32, i % 32);
        }
        // Zero-scale Q8_0 blocks are all zeros; subnormal scales give non-zero values.
        let block = |b: usize| &got[b * 32..][..32];
        if dtype == DType::Q8_0 {
            assert!(block(0).iter().all(|&v| v == 0.0));
        }
        assert!(block(1).iter().any(|&v| v != 0.0 && v.abs() < 6.2e-5 * 128.0));
    }
}

#[test]
fn quantize_round_trip_with_varied_scales() {
    let s = common::seed("varied scales round trip");
    let mut rng = StdRng::seed_from_u64(s);
    // Each block: uniform values times 2^U(-8, 8), or all zero, or tiny (f16-subnormal scales),
    // or constant (Q4_1's d = 0).
    let mut x = Vec::new();
    for b in 0..200 {
        let scale = match b % 6 {
            0 => 0.0,
            1 => 2f32.powf(rng.random_range(-20.0..-14.0)),
            _ => 2f32.powf(rng.random_range(-8.0..8.0)),
        };
        let c = rng.random_range(-1.0..1.0f32);
        x.extend((0..32).map(|_| if b % 6 == 5 { c * scale } else { rng.random_range(-1.0..1.0f32) * scale }));
    }
    for dtype in [DType::Q8_0, DType::Q4_1] {
        let q = quantize(dtype, &x);
        let y = dequantize(dtype, &q, x.len());
        let bs = dtype.bytes_for(32);
        for (b, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let h = |at: usize| f16::from_le_bytes([q[b * bs + at], q[b * bs + at + 1]]).to_f32();
            let (lo, hi) = xs.iter().fold((f32::MAX, f32::MIN), |(a, c), &v| (a.min(v), c.max(v)));
            // The quantizer picks q with the exact scale d; the stored scale (and Q4_1's
            // minimum) is d rounded to f16, which moves a value by at most |q|·|d - d16| (and
            // |min - m16|). Plus half a step, plus f32 rounding.
            let bound = match dtype {
                DType::Q8_0 => {
                    let d = lo.abs().max(hi.abs()) / 127.0;
                    0.5 * d + 127.0 * (d - h(0)).abs()
                }
                _ => {
                    let d = (hi - lo) / 15.0;
                    0.5 * d + 15.0 * (d - h(0)).abs() + (lo - h(2)).abs()
                }
            };
            for (a, c) in xs.iter().zip(ys) {
                let tol = bound * (1.0 + 1e-5) + 1e-6 * a.abs() + f32::MIN_POSITIVE;
                assert!((a - c).abs() <= tol, "{dtype} block {b}: {a} -> {c} (bound {bound})");
            }
            if b % 6 == 0 {
                assert!(ys.iter().all(|&v| v == 0.0), "{dtype} block {b}: zeros stay zeros");
            }
        }
    }
}

#[test]
fn repack_keeps_every_value_with_varied_scales() {
    let s = common::seed("varied scales repack");
    for dtype in [DType::Q8_0, DType::Q4_1] {
        let blocks = 131;
        let q = varied_blocks(dtype, blocks, s);
        let r = repack(dtype, &q, blocks * 32);
        let (qbytes, bs) = (if dtype == DType::Q8_0 { 32 } else { 16 }, dtype.bytes_for(32));
        let (d_word, m_word) = plane_words(dtype, blocks);
        for b in 0..blocks {
            let src = &q[b * bs..][..bs];
            assert_eq!(&r[b * qbytes..][..qbytes], &src[bs - qbytes..], "{dtype} quants of block {b}");
            let plane = |word: usize| f32::from_le_bytes(r[4 * word + 4 * b..][..4].try_into().unwrap());
            // f16 -> f32 is exact for zeros and subnormals too: compare bits.
            let d = f16::from_le_bytes([src[0], src[1]]).to_f32();
            assert_eq!(plane(d_word).to_bits(), d.to_bits(), "{dtype} scale of block {b} ({d:e})");
            if dtype == DType::Q4_1 {
                let m = f16::from_le_bytes([src[2], src[3]]).to_f32();
                assert_eq!(plane(m_word).to_bits(), m.to_bits(), "{dtype} min of block {b} ({m:e})");
            }
        }
    }
}

#[test]
fn gpu_matmul_with_varied_scales_matches_reference() {
    // Quantized weights on the GPU (the decode GEMV for one row, the quantized prefill kernel
    // for several) with every block's scale different: a kernel that applies a neighbouring
    // block's scale, drops a subnormal one or mishandles a zero one fails here. Tolerance: the
    // f32 dot-product bound 2·(k+1)·eps·sum|x·w| against the f64 reference (as tests/gemv.rs).
    let Some(ctx) = common::gpu() else { return };
    let s = common::seed("varied scales gpu");
    let (n, k) = (13, 32 * 9);
    for dtype in [DType::Q8_0, DType::Q4_1] {
        let bytes = varied_blocks(dtype, n * k / 32, s);
        let w = dequantize(dtype, &bytes, n * k);
        for m in [1, 5] {
            let x = common::random(s + m as u64, m * k, -1.0, 1.0);
            let mut g = Graph::new();
            let xi = g.input("x", &[m, k], DType::F32).unwrap();
            let wn = g.weight("w", &[n, k], HostData::Quant { dtype, len: n * k, bytes: bytes.clone() }).unwrap();
            let y = g.matmul_t(xi, wn).unwrap();
            g.output(y).unwrap();
            let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
            exe.poison_outputs();
            exe.set_input("x", &x).unwrap();
            exe.run().unwrap();
            let got = common::block(exe.read(y)).unwrap().to_f32();
            let want = webformer::cpu::matmul::matmul(&x, &w, &[m, k], &[n, k], &[m, n], true);
            let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
            let bound = webformer::cpu::matmul::matmul(&abs(&x), &abs(&w), &[m, k], &[n, k], &[m, n], true);
            assert_eq!(got.len(), want.len());
            for (i, ((g, w), b)) in got.iter().zip(&want).zip(&bound).enumerate() {
                let tol = 2.0 * (k + 1) as f32 * f32::EPSILON * b;
                assert!(
                    (g - w).abs() <= tol,
                    "{dtype} x[{m}, {k}] w[{n}, {k}]: element {i} is {g}, reference {w} (tolerance {tol})"
                );
            }
        }
    }
}
