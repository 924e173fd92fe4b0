//! Reference for the GEMM family (shaders/gemm*.wgsl): the product accumulated in f64 (via
//! `cpu::matmul`), then the bias and the activation exactly as `cpu::eval` applies them to a
//! matmul node, plus the magnitude bound that tolerances are stated in.

use super::{elementwise, matmul};
use crate::graph::Activation;

/// act(a · b + bias) (a · bᵀ when `trans_b`): a [..., m, k]; b [k, n] or [..., k, n]
/// ([n, k] / [..., n, k] when transposed); bias [n]; out [..., m, n].
pub fn gemm(a: &[f32], b: &[f32], a_shape: &[usize], b_shape: &[usize], out: &[usize], trans_b: bool, bias: Option<&[f32]>, act: Option<Activation>) -> Vec<f32> {
    let mut y = matmul::matmul(a, b, a_shape, b_shape, out, trans_b);
    if let Some(bias) = bias {
        y = elementwise::add(&y, bias);
    }
    match act {
        Some(act) => elementwise::activation(&y, act),
        None => y,
    }
}

/// Σ_p |a[i, p]| · |b[p, j]| for every output element: the scale of the rounding error of a
/// dot product accumulated in f32, |error| <= 2·k·eps·Σ|a||b| whatever the order of the sums.
pub fn magnitude(a: &[f32], b: &[f32], a_shape: &[usize], b_shape: &[usize], out: &[usize], trans_b: bool) -> Vec<f32> {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    matmul::matmul(&abs(a), &abs(b), a_shape, b_shape, out, trans_b)
}
