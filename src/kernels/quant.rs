//! GPU layout of GGUF block-quantized weights.
//!
//! GGUF blocks are 34 (Q8_0) or 20 (Q4_1) bytes, so most blocks start at addresses that are
//! not 4-byte aligned and a shader would need two loads and shifts per word. On upload we split
//! them into planes that are aligned for wide loads, keeping every value bit for bit:
//! - Q8_0: [quants: 32 bytes per block][d: f32 per block]
//! - Q4_1: [quants: 16 bytes per block][d: f32 per block][m: f32 per block]
//!
//! then zeros up to a multiple of 16 bytes, so that kernels may view the whole buffer as
//! `array<vec4<u32>>` (a runtime array's length is the buffer size divided by the stride;
//! without the padding the last scales could fall in a partial, unreachable vec4).
//! f16 scales are widened to f32 exactly, so GPU dequantization equals llama.cpp's.
//!
//! Plane offsets in 32-bit words, for `blocks` blocks: Q8_0 d at `8·blocks`; Q4_1 d at
//! `4·blocks` and m at `5·blocks` (see `plane_words`).

use half::f16;

use crate::tensor::{DType, QK};

/// Bytes the GPU copy of `n` elements takes (padded to 16 for quantized types).
pub fn gpu_bytes(dtype: DType, n: usize) -> usize {
    let blocks = n / QK;
    match dtype {
        DType::Q8_0 => (blocks * (32 + 4)).next_multiple_of(16),
        DType::Q4_1 => (blocks * (16 + 8)).next_multiple_of(16),
        other => other.bytes_for(n),
    }
}

/// Word (u32) offsets of the scale planes in the GPU copy of `blocks` blocks: (d, m).
/// Q8_0 has no m plane (0 is returned).
pub fn plane_words(dtype: DType, blocks: usize) -> (usize, usize) {
    match dtype {
        DType::Q8_0 => (8 * blocks, 0),
        DType::Q4_1 => (4 * blocks, 5 * blocks),
        _ => (0, 0),
    }
}

/// Repacks GGUF blocks into the planes described above.
pub fn repack(dtype: DType, bytes: &[u8], n: usize) -> Vec<u8> {
    let blocks = n / QK;
    let (block, quants) = match dtype {
        DType::Q8_0 => (34, 32),
        DType::Q4_1 => (20, 16),
        _ => return bytes.to_vec(),
    };
    let scales = block - quants;
    let mut q = Vec::with_capacity(gpu_bytes(dtype, n));
    let mut planes = vec![Vec::with_capacity(blocks * 4); scales / 2];
    for b in bytes.chunks(block).take(blocks) {
        q.extend_from_slice(&b[scales..]);
        for (k, plane) in planes.iter_mut().enumerate() {
            plane.extend(f16::from_le_bytes([b[2 * k], b[2 * k + 1]]).to_f32().to_le_bytes());
        }
    }
    for p in planes {
        q.extend(p);
    }
    q.resize(gpu_bytes(dtype, n), 0);
    q
}
