//! GGUF block quantization: the CPU reference against hand-computed blocks and the GPU
//! repacking that keeps every bit.

use half::f16;
use webformer::cpu::quant::{dequantize, quantize};
use webformer::kernels::quant::{gpu_bytes, plane_words, repack};
use webformer::DType;

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
