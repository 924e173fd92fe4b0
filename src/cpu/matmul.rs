//! Reference for shaders/matmul.wgsl: batched a · b or a · bᵀ, accumulated in f64.

use super::{elementwise, norm, Cx};
use crate::error::Result;
use crate::graph::{Activation, MatmulParams};
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
/// dequantization); then the bias and the activation. A fused linear layer is its composite:
/// rms_norm(x) first, silu(gate) · up for SwiGLU, the residual added last.
pub fn eval(cx: &Cx, op: &MatmulParams) -> Result<HostData> {
    let (_, up, gain, residual) = op.slots();
    let x = cx.f32(0, "matmul")?;
    let normed;
    let x = match (op.rms, gain) {
        (Some(eps), Some(g)) => {
            normed = norm::rms_norm(x, cx.f32(g, "linear: RMSNorm gain")?, cx.row_len(0), eps);
            &normed[..]
        }
        _ => x,
    };
    let product = |i: usize| matmul(x, &cx.inputs[i].to_f32(), cx.shapes[0], cx.shapes[i], cx.out, op.trans_b);
    let mut y = product(1);
    if op.bias {
        y = elementwise::add(&y, cx.f32(2, "matmul bias")?);
    }
    if let Some(act) = op.act {
        y = elementwise::activation(&y, act);
    }
    if let Some(u) = up {
        let gate = elementwise::activation(&y, Activation::Silu);
        y = gate.iter().zip(product(u)).map(|(g, u)| g * u).collect();
    }
    if let Some(r) = residual {
        y = elementwise::add(&y, cx.f32(r, "linear residual")?);
    }
    Ok(HostData::F32(y))
}
