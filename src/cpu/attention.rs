//! Reference for shaders/attention.wgsl: attention in plain loops with f64 scores, softmax and
//! sums; and the decode kernel's partials and merge, in the same layout as the GPU's so that
//! graphs with decode nodes can be compared node by node.

use crate::graph::{AttentionParams, KeyRange};
use crate::kernels::attention::decode_chunk;

/// The marker the kernels use for "no key seen" (the running max of an empty part).
pub const MASKED: f32 = -3.402_823_5e38;

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

/// The decode kernel's partials: for each (split, query, head), over the split's keys,
/// acc = Σ e^(s - m) v and then (m, l = Σ e^(s - m), 0, 0), m the split's max score (MASKED
/// and l = 0 when the split sees no key). Same layout and key spans as the GPU.
#[allow(clippy::too_many_arguments)]
pub fn decode_partials(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: &Dims,
    a: &AttentionParams,
    splits: u32,
    runtime: &[u32],
    keep: Option<&[bool]>,
) -> Vec<f32> {
    let (d, splits) = (dims.d, splits as usize);
    let (past, n_keys) = positions(a, dims, runtime);
    let rows = dims.lq * dims.heads;
    let mut out = vec![0f32; splits * rows * (d + 4)];
    let stats = splits * rows * d;
    for i in 0..dims.lq {
        let end = key_end(a, past, n_keys, i);
        let chunk = decode_chunk(end, splits);
        for h in 0..dims.heads {
            let hk = h / (dims.heads / dims.kv_heads);
            let s = scores(q, k, dims, a.scale, i, h, end, keep);
            for sp in 0..splits {
                let row = sp * rows + i * dims.heads + h;
                let span = (sp * chunk).min(end)..((sp + 1) * chunk).min(end);
                let m = s[span.clone()].iter().flatten().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                let mut l = 0f64;
                let mut acc = vec![0f64; d];
                for j in span {
                    if let Some(x) = s[j] {
                        let w = (x - m).exp();
                        l += w;
                        for e in 0..d {
                            acc[e] += w * v[(j * dims.kv_heads + hk) * d + e] as f64;
                        }
                    }
                }
                for e in 0..d {
                    out[row * d + e] = acc[e] as f32;
                }
                out[stats + 4 * row] = if m.is_finite() { m as f32 } else { MASKED };
                out[stats + 4 * row + 1] = l as f32;
            }
        }
    }
    out
}

/// Merges decode partials into [lq, heads, d]: Σ_s acc_s e^(m_s - M) / Σ_s l_s e^(m_s - M)
/// over the parts with l_s > 0 (zeros when there are none).
pub fn merge(partials: &[f32], out_shape: &[usize], splits: u32) -> Vec<f32> {
    let (rows, d, splits) = (out_shape[0] * out_shape[1], out_shape[2], splits as usize);
    let stats = splits * rows * d;
    let mut out = vec![0f32; rows * d];
    for row in 0..rows {
        let st = |s: usize| {
            (partials[stats + 4 * (s * rows + row)] as f64, partials[stats + 4 * (s * rows + row) + 1] as f64)
        };
        let live: Vec<usize> = (0..splits).filter(|&s| st(s).1 > 0.0).collect();
        let mx = live.iter().map(|&s| st(s).0).fold(f64::NEG_INFINITY, f64::max);
        let den: f64 = live.iter().map(|&s| (st(s).0 - mx).exp() * st(s).1).sum();
        if den == 0.0 {
            continue;
        }
        for e in 0..d {
            let num: f64 = live.iter().map(|&s| (st(s).0 - mx).exp() * partials[(s * rows + row) * d + e] as f64).sum();
            out[row * d + e] = (num / den) as f32;
        }
    }
    out
}
