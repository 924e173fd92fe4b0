//! Reference for shaders/matmul.wgsl: batched a · b or a · bᵀ, accumulated in f64.

use super::{elementwise, Cx};
use crate::error::Result;
use crate::graph::MatmulParams;
use crate::tensor::HostData;

/// a: [..., m, k]; b: [k, n] or [..., k, n] ([n, k] / [..., n, k] when `trans_b`); out: [..., m, n].
pub fn matmul(a: &[f32], b: &[f32], a_shape: &[usize], b_shape: &[usize], out: &[usize], trans_b: bool) -> Vec<f32> {
    let k = a_shape[a_shape.len() - 1];
    let (m, n) = (out[out.len() - 2], out[out.len() - 1]);
    let batch: usize = out[..out.len() - 2].iter().product();
    let b_stride = if b_shape.len() > 2 { k * n } else { 0 };
    let mut c = vec![0f32; batch * m * n];
    for z in 0..batch {
        let (a0, b0) = (z * m * k, z * b_stride);
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for p in 0..k {
                    let bv = if trans_b { b[b0 + j * k + p] } else { b[b0 + p * n + j] };
                    acc += a[a0 + i * k + p] as f64 * bv as f64;
                }
                c[z * m * n + i * n + j] = acc as f32;
            }
        }
    }
    c
}

/// The reference of a matmul node: b may be f16 or quantized, widened exactly (llama.cpp's
/// dequantization); then the bias and the activation.
pub fn eval(cx: &Cx, op: &MatmulParams) -> Result<HostData> {
    let b = cx.inputs[1].to_f32();
    let mut y = matmul(cx.f32(0, "matmul")?, &b, cx.shapes[0], cx.shapes[1], cx.out, op.trans_b);
    if op.bias {
        y = elementwise::add(&y, cx.f32(2, "matmul bias")?);
    }
    Ok(HostData::F32(match op.act {
        Some(act) => elementwise::activation(&y, act),
        None => y,
    }))
}
