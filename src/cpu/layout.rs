//! Reference for shaders/layout.wgsl.

use super::Cx;
use crate::error::Result;
use crate::graph::Permute;
use crate::tensor::HostData;

/// Permutes `x` of `shape`: output dimension k is input dimension perm[k].
pub fn permute(x: &[f32], shape: &[usize], perm: &[u8]) -> Vec<f32> {
    let rank = shape.len();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let out: Vec<usize> = perm.iter().map(|&p| shape[p as usize]).collect();
    let mut y = Vec::with_capacity(x.len());
    let mut coord = vec![0usize; rank];
    for _ in 0..x.len() {
        y.push(x[(0..rank).map(|k| coord[k] * strides[perm[k] as usize]).sum::<usize>()]);
        // Next output coordinate, last dimension fastest.
        for k in (0..rank).rev() {
            coord[k] += 1;
            if coord[k] < out[k] {
                break;
            }
            coord[k] = 0;
        }
    }
    y
}

/// The reference of a permute node.
pub fn eval(cx: &Cx, p: &Permute) -> Result<HostData> {
    Ok(HostData::F32(permute(cx.f32(0, "permute")?, cx.shapes[0], &p.perm[..p.rank as usize])))
}
