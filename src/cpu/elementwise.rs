//! Reference for shaders/elementwise.wgsl.

use super::Cx;
use crate::error::Result;
use crate::graph::Activation;
use crate::graph::{Elementwise, Scalar};
use crate::tensor::HostData;

/// a + b with b repeating every b.len() elements.
pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().enumerate().map(|(i, x)| x + b[i % b.len()]).collect()
}

/// a * b with b repeating every b.len() elements.
pub fn mul(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().enumerate().map(|(i, x)| x * b[i % b.len()]).collect()
}

pub fn scale(a: &[f32], factor: f32) -> Vec<f32> {
    a.iter().map(|x| x * factor).collect()
}

/// The activation in f64 with the exact erf (libm), so the GPU's approximations are measured
/// against the true function.
pub fn activation(a: &[f32], act: Activation) -> Vec<f32> {
    a.iter()
        .map(|&x| {
            let x = x as f64;
            let y = match act {
                Activation::GeluErf => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
                Activation::GeluTanh => {
                    let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
                    0.5 * x * (1.0 + u.tanh())
                }
                Activation::Silu => x / (1.0 + (-x).exp()),
                Activation::Relu => x.max(0.0),
                Activation::Tanh => x.tanh(),
            };
            y as f32
        })
        .collect()
}

/// The reference of an elementwise node.
pub fn eval(cx: &Cx, op: &Elementwise) -> Result<HostData> {
    let x = cx.f32(0, "elementwise")?;
    Ok(HostData::F32(match *op {
        Elementwise::Add => add(x, cx.f32(1, "add")?),
        Elementwise::Mul => mul(x, cx.f32(1, "mul")?),
        Elementwise::Scale(Scalar::Const(v)) => scale(x, v),
        Elementwise::Scale(Scalar::Runtime(slot)) => scale(x, f32::from_bits(cx.slot(slot))),
        Elementwise::Activation(act) => activation(x, act),
    }))
}
