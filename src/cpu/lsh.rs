//! Reference for the `lsh` family (Reformer attention) in plain loops, f64 accumulation,
//! following Hugging Face's `LSHSelfAttention` / `LocalSelfAttention` step by step: the
//! meaning of each op (see `graph::lsh`), never the GPU's passes.

use super::softmax::mask_keep;
use crate::error::{Error, Result};
use crate::graph::{Buckets, LshOp, MASK_VALUE, SELF_MASK_VALUE};
use crate::tensor::HostData;

/// Sizes shared by the ops: B rows (heads), L tokens, d head size, R rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub b: usize,
    pub l: usize,
    pub d: usize,
}

/// Chunking of an attention op: chunk length, chunks seen before and after, causal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunking {
    pub chunk: usize,
    pub before: usize,
    pub after: usize,
    pub causal: bool,
}

/// Offset buckets [B, R·L] of qk [B, L, d] under rotations [B, d, R, S] (see
/// `Graph::lsh_hash`). `keep` is the padding mask (false: the token takes the extra bucket).
pub fn hash(qk: &[f32], rot: &[f32], dims: Dims, rounds: usize, buckets: &Buckets, keep: Option<&[bool]>) -> Vec<u32> {
    let Dims { b, l, d } = dims;
    let s = buckets.rotation_half();
    let count = buckets.count();
    let stride = count + keep.is_some() as u32;
    let mut out = vec![0u32; b * rounds * l];
    for h in 0..b {
        for r in 0..rounds {
            for t in 0..l {
                let x = &qk[(h * l + t) * d..][..d];
                // rotated[j] = x · R[h, :, r, j]
                let rotated: Vec<f64> = (0..s)
                    .map(|j| (0..d).map(|k| x[k] as f64 * rot[((h * d + k) * rounds + r) * s + j] as f64).sum())
                    .collect();
                let padded = keep.is_some_and(|m| !m[t]);
                let bucket = if padded { count } else { combined_bucket(&rotated, buckets) };
                out[(h * rounds + r) * l + t] = bucket + r as u32 * stride;
            }
        }
    }
    out
}

/// HF's bucket of one rotated vector: per factor f (its f/2 columns, in order), the argmax
/// over [x, -x] (first maximum wins, as torch.argmax), combined as Σ argmax_i · Π_{j<i} f_j.
pub(crate) fn combined_bucket(rotated: &[f64], buckets: &Buckets) -> u32 {
    let (mut bucket, mut start, mut product) = (0u32, 0usize, 1u32);
    for &f in buckets.list() {
        let half = f as usize / 2;
        let cols = &rotated[start..start + half];
        let value = |i: usize| if i < half { cols[i] } else { -cols[i - half] };
        let mut best = 0;
        for i in 1..2 * half {
            if value(i) > value(best) {
                best = i;
            }
        }
        bucket += best as u32 * product;
        start += half;
        product *= f;
    }
    bucket
}

/// Positions of the keys a query in window-chunk `c` (of `n_chunks`) sees, in HF's
/// look-adjacent order: chunks c-before ..= c+after taken circularly, each `chunk` long.
fn window(c: usize, n_chunks: usize, ch: &Chunking) -> impl Iterator<Item = usize> + '_ {
    let (before, after, chunk) = (ch.before as isize, ch.after as isize, ch.chunk);
    (-before..=after).flat_map(move |i| {
        let cc = (c as isize + i).rem_euclid(n_chunks as isize) as usize;
        cc * chunk..(cc + 1) * chunk
    })
}

/// torch's f32 log-sum-exp: the f64 value rounded to f32. HF normalises with it (weights
/// exp(s - lse)), and where |lse| is large its rounding shows: a row that sees only its own
/// token twice (-1e5 each) has lse = f32(-1e5 + ln 2) = -99999.3047 and weights summing to
/// 0.9978, and a row of masked keys only (-1e9 each) has lse = -1e9 and weights of 1 each.
/// Matching HF means reproducing that.
fn lse_f32(max: f64, sum: f64) -> f64 {
    (max + sum.ln()) as f32 as f64
}

/// Softmax-weighted sum of `scores` over values `vals(j)` as HF computes it (weights
/// exp(s - lse) with lse rounded to f32); returns (output, log-sum-exp).
pub(crate) fn attend(scores: &[f64], d: usize, vals: impl Fn(usize) -> usize, v: &[f32]) -> (Vec<f64>, f64) {
    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    let lse = lse_f32(max, sum);
    let mut out = vec![0f64; d];
    for (j, s) in scores.iter().enumerate() {
        let w = (s - lse).exp();
        let row = &v[vals(j) * d..][..d];
        for k in 0..d {
            out[k] += w * row[k] as f64;
        }
    }
    (out, lse)
}

/// Chunked shared-QK attention over the sorted order (see `Graph::lsh_chunk_attention`):
/// qk, v [B, L, d], perm [B, N] -> [B, N, d + 1] (output, then log-sum-exp).
pub fn chunk_attention(
    qk: &[f32],
    v: &[f32],
    perm: &[u32],
    dims: Dims,
    ch: &Chunking,
    keep: Option<&[bool]>,
) -> Vec<f32> {
    let Dims { b, l, d } = dims;
    let n = perm.len() / b;
    let n_chunks = n / ch.chunk;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f32; b * n * (d + 1)];
    for h in 0..b {
        let tok = |s: usize| perm[h * n + s] as usize % l;
        let row = |t: usize| &qk[(h * l + t) * d..][..d];
        // HF's _len_and_dim_norm: x · rsqrt(mean(x²) + 1e-6) / sqrt(d).
        let inv_norm: Vec<f64> = (0..l)
            .map(|t| 1.0 / (row(t).iter().map(|&x| x as f64 * x as f64).sum::<f64>() / d as f64 + 1e-6).sqrt())
            .collect();
        for s in 0..n {
            let (tq, q) = (tok(s), row(tok(s)));
            let keys: Vec<usize> = window(s / ch.chunk, n_chunks, ch).map(tok).collect();
            let scores: Vec<f64> = keys
                .iter()
                .map(|&tk| {
                    let hidden = keep.is_some_and(|m| !m[tk]) || (ch.causal && tk > tq);
                    let dot: f64 = q.iter().zip(row(tk)).map(|(&a, &c)| a as f64 * c as f64).sum();
                    let mut score = if hidden { MASK_VALUE as f64 } else { dot * inv_norm[tk] * scale };
                    if tk == tq {
                        score = SELF_MASK_VALUE as f64;
                    }
                    score
                })
                .collect();
            let (o, lse) = attend(&scores, d, |j| h * l + keys[j], v);
            let dst = &mut out[(h * n + s) * (d + 1)..][..d + 1];
            for k in 0..d {
                dst[k] = o[k] as f32;
            }
            dst[d] = lse as f32;
        }
    }
    out
}

/// Un-sort and combine rounds (see `Graph::lsh_combine`): attended [B, R·L, d + 1], undo
/// [B, R·L] -> [B, L, d].
pub fn combine(att: &[f32], undo: &[u32], b: usize, rounds: usize, d: usize) -> Vec<f32> {
    let n = undo.len() / b;
    let l = n / rounds;
    let mut out = vec![0f32; b * l * d];
    for h in 0..b {
        for t in 0..l {
            let at = |r: usize| &att[(h * n + undo[h * n + r * l + t] as usize) * (d + 1)..][..d + 1];
            let lses: Vec<f64> = (0..rounds).map(|r| at(r)[d] as f64).collect();
            let max = lses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let total = lse_f32(max, lses.iter().map(|x| (x - max).exp()).sum::<f64>());
            for k in 0..d {
                let sum: f64 = (0..rounds).map(|r| (lses[r] - total).exp() * at(r)[k] as f64).sum();
                out[(h * l + t) * d + k] = sum as f32;
            }
        }
    }
    out
}

/// Local attention (see `Graph::local_attention`; `ch` already reduced to one chunk of L for
/// short sequences): q, k, v [B, L, d] -> [B, L, d].
pub fn local_attention(q: &[f32], k: &[f32], v: &[f32], dims: Dims, ch: &Chunking, keep: Option<&[bool]>) -> Vec<f32> {
    let Dims { b, l, d } = dims;
    let n_chunks = l / ch.chunk;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f32; b * l * d];
    for h in 0..b {
        for t in 0..l {
            let qr = &q[(h * l + t) * d..][..d];
            let keys: Vec<usize> = window(t / ch.chunk, n_chunks, ch).collect();
            let scores: Vec<f64> = keys
                .iter()
                .map(|&tk| {
                    if keep.is_some_and(|m| !m[tk]) || (ch.causal && tk > t) {
                        return MASK_VALUE as f64;
                    }
                    let kr = &k[(h * l + tk) * d..][..d];
                    qr.iter().zip(kr).map(|(&a, &c)| a as f64 * c as f64).sum::<f64>() * scale
                })
                .collect();
            let (o, _) = attend(&scores, d, |j| h * l + keys[j], v);
            for (x, y) in out[(h * l + t) * d..][..d].iter_mut().zip(o) {
                *x = y as f32;
            }
        }
    }
    out
}

/// A stable argsort of each row of `keys` [B, N] (ties by index) and its inverse: the
/// reference of the sort family's meaning, used by [`lsh_attention`].
pub fn argsort_rows(keys: &[u32], b: usize) -> (Vec<u32>, Vec<u32>) {
    let n = keys.len() / b;
    let mut perm = Vec::with_capacity(keys.len());
    let mut undo = vec![0u32; keys.len()];
    for h in 0..b {
        let row = &keys[h * n..][..n];
        let mut idx: Vec<u32> = (0..n as u32).collect();
        idx.sort_by_key(|&i| row[i as usize]);
        for (s, &i) in idx.iter().enumerate() {
            undo[h * n + i as usize] = s as u32;
        }
        perm.extend(idx);
    }
    (perm, undo)
}

#[allow(clippy::too_many_arguments)]
/// The whole of HF's LSH self-attention on qk, v [B, L, d] with rotations [B, d, R, S] ->
/// [B, L, d]: hashing, stable sort, chunked attention, un-sort and combination of rounds; or,
/// when L <= chunk, HF's plain path (every token against all L, same masks, no hashing).
pub fn lsh_attention(
    qk: &[f32],
    v: &[f32],
    rot: &[f32],
    dims: Dims,
    rounds: usize,
    buckets: &Buckets,
    ch: &Chunking,
    keep: Option<&[bool]>,
) -> Vec<f32> {
    if dims.l <= ch.chunk {
        let id: Vec<u32> = (0..dims.b).flat_map(|_| 0..dims.l as u32).collect();
        let plain = Chunking { chunk: dims.l, before: 0, after: 0, causal: ch.causal };
        let att = chunk_attention(qk, v, &id, dims, &plain, keep);
        return combine(&att, &id, dims.b, 1, dims.d);
    }
    let keys = hash(qk, rot, dims, rounds, buckets, keep);
    let (perm, undo) = argsort_rows(&keys, dims.b);
    let att = chunk_attention(qk, v, &perm, dims, ch, keep);
    combine(&att, &undo, dims.b, rounds, dims.d)
}

/// Evaluates one `lsh` op on host data (the arm of `cpu::eval`).
pub fn eval(cx: &super::Cx, op: &LshOp) -> Result<HostData> {
    let (inputs, shapes) = (cx.inputs, cx.shapes);
    let f = |i: usize| inputs[i].as_f32(op.name());
    let s = shapes[0];
    let dims = Dims { b: s[0], l: s[1], d: s[2] };
    let keep = |on: bool, i: usize| on.then(|| mask_keep(inputs[i]));
    let u = |i: usize| match inputs[i] {
        HostData::U32(x) => Ok(x.as_slice()),
        other => Err(Error::DType {
            what: format!("{}: input {i}", op.name()),
            expected: "u32".into(),
            got: other.dtype().to_string(),
        }),
    };
    Ok(match *op {
        LshOp::Hash { buckets, mask } => {
            HostData::U32(hash(f(0)?, f(1)?, dims, shapes[1][2], &buckets, keep(mask, 2).as_deref()))
        }
        LshOp::ChunkAttention { chunk, before, after, causal, mask } => {
            let ch = Chunking { chunk: chunk as usize, before: before as usize, after: after as usize, causal };
            HostData::F32(chunk_attention(f(0)?, f(1)?, u(2)?, dims, &ch, keep(mask, 3).as_deref()))
        }
        LshOp::Combine { rounds } => HostData::F32(combine(f(0)?, u(1)?, s[0], rounds as usize, s[2] - 1)),
        LshOp::Local { chunk, before, after, causal, mask } => {
            let ch = Chunking { chunk: chunk as usize, before: before as usize, after: after as usize, causal };
            HostData::F32(local_attention(f(0)?, f(1)?, f(2)?, dims, &ch, keep(mask, 3).as_deref()))
        }
    })
}
