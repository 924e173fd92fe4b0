//! Reference for shaders/norm.wgsl, in f64.

use super::Cx;
use crate::error::Result;
use crate::graph::Norm;
use crate::tensor::HostData;

/// LayerNorm of each row of `n` elements: (x - mean) / sqrt(var + eps) · w + b, with the
/// biased variance, mean and variance computed two-pass in f64.
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], n: usize, eps: f32) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(n) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        y.extend(row.iter().enumerate().map(|(i, &v)| ((v as f64 - mean) * inv * w[i] as f64 + b[i] as f64) as f32));
    }
    y
}

/// RMSNorm of each row of `n` elements (Llama): x / sqrt(mean(x²) + eps) · w, in f64.
pub fn rms_norm(x: &[f32], w: &[f32], n: usize, eps: f32) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(n) {
        let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (ms + eps as f64).sqrt();
        y.extend(row.iter().enumerate().map(|(i, &v)| (v as f64 * inv * w[i] as f64) as f32));
    }
    y
}

/// The reference of a norm node.
pub fn eval(cx: &Cx, op: &Norm) -> Result<HostData> {
    let (x, n) = (cx.f32(0, "norm")?, cx.row_len(0));
    Ok(HostData::F32(match *op {
        Norm::Layer { eps } => layer_norm(x, cx.f32(1, "layer_norm")?, cx.f32(2, "layer_norm")?, n, eps),
        Norm::Rms { eps } => rms_norm(x, cx.f32(1, "rms_norm")?, n, eps),
    }))
}
