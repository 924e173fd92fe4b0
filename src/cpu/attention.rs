//! Reference for the attention op (shaders/attention.wgsl): attention in plain loops with f64
//! scores, softmax and sums. It computes the op's meaning, whichever kernel runs it (tiled or
//! split-key decode, whose partials are the kernel's own scratch).

use super::{softmax, Cx};
use crate::error::Result;
use crate::graph::{AttentionParams, KeyRange};
use crate::tensor::HostData;

/// Shapes of an attention node: q [lq, heads, d], k and v [lk, kv_heads, d].
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub lq: usize,
    pub heads: usize,
    pub d: usize,
    pub lk: usize,
    pub kv_heads: usize,
}

impl Dims {
    /// From the node's input shapes (q, k, ...).
    pub fn of(shapes: &[&[usize]]) -> Self {
        Self { lq: shapes[0][0], heads: shapes[0][1], d: shapes[0][2], lk: shapes[1][0], kv_heads: shapes[1][1] }
    }
}

/// (position of query 0, number of keys that exist) for this run.
pub fn positions(a: &AttentionParams, dims: &Dims, runtime: &[u32]) -> (usize, usize) {
    match a.keys {
        KeyRange::All => (dims.lk.saturating_sub(dims.lq), dims.lk),
        KeyRange::Runtime(slot) => {
            let past = runtime[slot as usize] as usize;
            (past, (past + dims.lq).min(dims.lk))
        }
    }
}

/// One past the last key query `i` sees.
fn key_end(a: &AttentionParams, past: usize, n_keys: usize, i: usize) -> usize {
    if a.causal {
        n_keys.min(past + i + 1)
    } else {
        n_keys
    }
}

/// Scaled scores of query i, head h against keys 0..end (None where the mask hides a key).
#[allow(clippy::too_many_arguments)]
fn scores(
    q: &[f32],
    k: &[f32],
    dims: &Dims,
    scale: f32,
    i: usize,
    h: usize,
    end: usize,
    keep: Option<&[bool]>,
) -> Vec<Option<f64>> {
    let (d, hk) = (dims.d, h / (dims.heads / dims.kv_heads));
    let qi = &q[(i * dims.heads + h) * d..][..d];
    (0..end)
        .map(|j| {
            if keep.is_some_and(|m| !m[j]) {
                return None;
            }
            let kj = &k[(j * dims.kv_heads + hk) * d..][..d];
            Some(scale as f64 * qi.iter().zip(kj).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>())
        })
        .collect()
}

/// softmax(scale · q kᵀ + masks) v per head; a query that sees no key gets zeros.
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: &Dims,
    a: &AttentionParams,
    runtime: &[u32],
    keep: Option<&[bool]>,
) -> Vec<f32> {
    let d = dims.d;
    let (past, n_keys) = positions(a, dims, runtime);
    let mut out = vec![0f32; dims.lq * dims.heads * d];
    for i in 0..dims.lq {
        for h in 0..dims.heads {
            let hk = h / (dims.heads / dims.kv_heads);
            let s = scores(q, k, dims, a.scale, i, h, key_end(a, past, n_keys, i), keep);
            let m = s.iter().flatten().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let w: Vec<f64> = s.iter().map(|x| x.map_or(0.0, |x| (x - m).exp())).collect();
            let sum: f64 = w.iter().sum();
            if sum == 0.0 {
                continue;
            }
            for e in 0..d {
                let acc: f64 = w.iter().enumerate().map(|(j, w)| w * v[(j * dims.kv_heads + hk) * d + e] as f64).sum();
                out[(i * dims.heads + h) * d + e] = (acc / sum) as f32;
            }
        }
    }
    out
}

/// The reference of an attention node; keys and values may be f16 (widened exactly).
pub fn eval(cx: &Cx, a: &AttentionParams) -> Result<HostData> {
    let (k, v) = (cx.inputs[1].to_f32(), cx.inputs[2].to_f32());
    let keep = a.mask.then(|| softmax::mask_keep(cx.inputs[3]));
    let q = cx.f32(0, "attention")?;
    Ok(HostData::F32(attention(q, &k, &v, &Dims::of(cx.shapes), a, cx.runtime, keep.as_deref())))
}
