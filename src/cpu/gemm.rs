//! Reference for the GEMM family (shaders/gemm*.wgsl): the product itself is `cpu::matmul`
//! (accumulated in f64); here are the epilogue, applied exactly as `cpu::eval` applies it to a
//! matmul node, and the magnitude bound that tolerances are stated in.

use super::{elementwise, matmul};
use crate::graph::Activation;

/// act(y + bias) for a product y [..., n] (bias [n] broadcast over the rows).
pub fn epilogue(y: Vec<f32>, bias: Option<&[f32]>, act: Option<Activation>) -> Vec<f32> {
    let y = match bias {
        Some(bias) => elementwise::add(&y, bias),
        None => y,
    };
    match act {
        Some(act) => elementwise::activation(&y, act),
        None => y,
    }
}

/// Σ_p |a[i, p]| · |b[p, j]| for every output element (shapes as for `cpu::matmul::matmul`):
/// the scale of the rounding error of a dot product accumulated in f32,
/// |error| <= 2·k·eps·Σ|a||b| whatever the order of the sums.
pub fn magnitude(a: &[f32], b: &[f32], a_shape: &[usize], b_shape: &[usize], out: &[usize], trans_b: bool) -> Vec<f32> {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    matmul::matmul(&abs(a), &abs(b), a_shape, b_shape, out, trans_b)
}
