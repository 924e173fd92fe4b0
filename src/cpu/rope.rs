//! Reference for shaders/rope.wgsl: the textbook formula in f64.

use super::Cx;
use crate::error::Result;
use crate::graph::RopeMode;
use crate::graph::RopeParams;
use crate::tensor::HostData;

/// Rotary embedding of x [T, H, d] with positions start + t: pair i turns by
/// (start + t) · theta^(-2i/d), computed in f64 (powf, sin, cos), rounded to f32 at the end.
pub fn rope(x: &[f32], shape: &[usize], mode: RopeMode, theta: f32, start: u32) -> Vec<f32> {
    let (tokens, heads, d) = (shape[0], shape[1], shape[2]);
    let half = d / 2;
    let mut y = vec![0f32; x.len()];
    for t in 0..tokens {
        let pos = start as f64 + t as f64;
        for h in 0..heads {
            let base = (t * heads + h) * d;
            for i in 0..half {
                let a = pos * (theta as f64).powf(-2.0 * i as f64 / d as f64);
                let (s, c) = a.sin_cos();
                let (j, k) = match mode {
                    RopeMode::Adjacent => (base + 2 * i, base + 2 * i + 1),
                    RopeMode::Halves => (base + i, base + i + half),
                };
                let (u, v) = (x[j] as f64, x[k] as f64);
                y[j] = (u * c - v * s) as f32;
                y[k] = (u * s + v * c) as f32;
            }
        }
    }
    y
}

/// The reference of a rope node.
pub fn eval(cx: &Cx, op: &RopeParams) -> Result<HostData> {
    Ok(HostData::F32(rope(cx.f32(0, "rope")?, cx.shapes[0], op.mode, op.theta, cx.slot(op.slot))))
}
