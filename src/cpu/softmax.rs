//! Reference for shaders/softmax.wgsl, in f64.

use super::Cx;
use crate::error::Result;
use crate::graph::SoftmaxParams;
use crate::tensor::HostData;

/// Which keys a padding mask keeps: nonzero entries (for f32, 0.0 and -0.0 mask).
pub fn mask_keep(mask: &HostData) -> Vec<bool> {
    match mask {
        HostData::U32(m) => m.iter().map(|&b| b != 0).collect(),
        other => other.to_f32().iter().map(|&b| b != 0.0).collect(),
    }
}

/// Softmax of `scale * x` over the last dimension of `shape`. Key j of row i (i counted along
/// the second-to-last dimension) is masked when causal and j > i + offset, or when `keep[j]`
/// is false; masked entries are 0 and a row with every key masked is all zeros.
pub fn softmax(x: &[f32], shape: &[usize], p: &SoftmaxParams, keep: Option<&[bool]>) -> Vec<f32> {
    let n = shape[shape.len() - 1];
    let per_matrix = if shape.len() >= 2 { shape[shape.len() - 2] } else { 1 };
    let mut y = vec![0f32; x.len()];
    for (row, (xr, yr)) in x.chunks(n).zip(y.chunks_mut(n)).enumerate() {
        let i = row % per_matrix;
        let kept = |j: usize| !(p.causal && j > i + p.offset as usize) && keep.is_none_or(|k| k[j]);
        let s: Vec<f64> = xr.iter().map(|&v| p.scale as f64 * v as f64).collect();
        let m = (0..n).filter(|&j| kept(j)).map(|j| s[j]).fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = (0..n).map(|j| if kept(j) { (s[j] - m).exp() } else { 0.0 }).collect();
        let sum: f64 = e.iter().sum();
        if sum > 0.0 {
            for j in 0..n {
                yr[j] = (e[j] / sum) as f32;
            }
        }
    }
    y
}

/// The reference of a softmax node.
pub fn eval(cx: &Cx, sp: &SoftmaxParams) -> Result<HostData> {
    let keep = sp.mask.then(|| mask_keep(cx.inputs[1]));
    Ok(HostData::F32(softmax(cx.f32(0, "softmax")?, cx.out, sp, keep.as_deref())))
}
