//! GGUF block quantization, as llama.cpp defines it (ggml-quants.c): the reference for the
//! quantized kernels. Dequantization is bit-exact with llama.cpp's `dequantize_row_*`.

use half::f16;

use crate::tensor::{DType, QK};

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// `len` elements of `dtype` blocks to f32. Non-quantized dtypes are not accepted here.
pub fn dequantize(dtype: DType, bytes: &[u8], len: usize) -> Vec<f32> {
    let mut out = vec![0f32; len];
    for (blk, y) in out.chunks_mut(QK).enumerate() {
        match dtype {
            DType::Q8_0 => {
                let b = &bytes[blk * 34..][..34];
                let d = f16_at(b, 0);
                for j in 0..QK {
                    y[j] = (b[2 + j] as i8) as f32 * d;
                }
            }
            DType::Q4_1 => {
                let b = &bytes[blk * 20..][..20];
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                for j in 0..QK / 2 {
                    let q = b[4 + j];
                    y[j] = (q & 0x0F) as f32 * d + m;
                    y[j + QK / 2] = (q >> 4) as f32 * d + m;
                }
            }
            other => panic!("dequantize: {other} is not a block-quantized type"),
        }
    }
    out
}

/// f32 to `dtype` blocks as llama.cpp's `quantize_row_*_ref` does (`x.len()` a multiple of 32).
pub fn quantize(dtype: DType, x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dtype.bytes_for(x.len()));
    for blk in x.chunks(QK) {
        match dtype {
            DType::Q8_0 => {
                let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(blk.iter().map(|v| (v * id).round() as i8 as u8));
            }
            DType::Q4_1 => {
                let min = blk.iter().fold(f32::MAX, |a, &v| a.min(v));
                let max = blk.iter().fold(f32::MIN, |a, &v| a.max(v));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(f16::from_f32(min).to_le_bytes());
                for j in 0..QK / 2 {
                    let q0 = (((blk[j] - min) * id + 0.5) as u8).min(15);
                    let q1 = (((blk[j + QK / 2] - min) * id + 0.5) as u8).min(15);
                    out.push(q0 | (q1 << 4));
                }
            }
            other => panic!("quantize: {other} is not a block-quantized type"),
        }
    }
    out
}
