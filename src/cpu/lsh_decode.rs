//! Reference for the `lsh_decode` family (Reformer's cached decoding step) in plain loops, f64
//! accumulation, following Hugging Face's cached `LSHSelfAttention` / `LocalSelfAttention`
//! literally: a stable argsort of each round's buckets, the window of sorted indices taken mod
//! L and gathered with its repeats (see `graph::lsh_decode`), never the GPU's passes.

use super::lsh::{attend, combined_bucket};
use crate::error::{Error, Result};
use crate::graph::{DecodeAttend, DecodeHash, DecodeLocal, LshDecodeOp, SELF_MASK_VALUE};
use crate::tensor::HostData;

/// `Graph::lsh_decode_hash`: qk [T, H·d], rotations [H, d, R, S], the bucket cache (auto
/// stride) -> [T, H·R].
pub fn hash(qk: &[f32], rot: &[f32], cache: Option<&[f32]>, p: &DecodeHash, n: usize) -> Vec<f32> {
    let (h, r) = (p.heads as usize, p.rounds as usize);
    let d = rot.len() / (h * r * p.buckets.rotation_half());
    let s = p.buckets.rotation_half();
    let count = p.buckets.count();
    let stride = p.stride.unwrap_or_else(|| {
        // HF: increase_num_buckets = past_buckets.max() > num_hashes * max_bucket - 1.
        let cached = &cache.expect("the builder requires the cache")[..n * h * r];
        let max = cached.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        count + (max > (r as u32 * count) as f32 - 1.0) as u32
    });
    let t = qk.len() / (h * d);
    let mut out = vec![0f32; t * h * r];
    for row in 0..t {
        for head in 0..h {
            let x = &qk[(row * h + head) * d..][..d];
            for round in 0..r {
                let rotated: Vec<f64> = (0..s)
                    .map(|j| (0..d).map(|k| x[k] as f64 * rot[((head * d + k) * r + round) * s + j] as f64).sum())
                    .collect();
                let b = combined_bucket(&rotated, &p.buckets) + round as u32 * stride;
                out[(row * h + head) * r + round] = b as f32;
            }
        }
    }
    out
}

/// `Graph::lsh_decode_attend`: qk, v [rows, H·d], buckets [rows, H·R], position n -> [1, H·d].
pub fn attend_step(qk: &[f32], v: &[f32], buckets: &[f32], p: &DecodeAttend, n: usize) -> Vec<f32> {
    let (h, r) = (p.heads as usize, p.rounds as usize);
    let rows = buckets.len() / (h * r);
    let d = qk.len() / (rows * h);
    let l = n + 1;
    let dense = l <= p.dense_until as usize;
    let key = |j: usize, head: usize| -> Vec<f64> {
        let x = &qk[(j * h + head) * d..][..d];
        let ms = x.iter().map(|&a| a as f64 * a as f64).sum::<f64>() / d as f64;
        // HF's _len_and_dim_norm in f32: x * rsqrt(mean(x²) + 1e-6) / sqrt(d).
        let f = 1.0 / (ms + 1e-6).sqrt() / (d as f64).sqrt();
        x.iter().map(|&a| a as f64 * f).collect()
    };
    let mut out = vec![0f32; h * d];
    for head in 0..h {
        let q = &qk[(n * h + head) * d..][..d];
        let mut results = Vec::new();
        for round in 0..if dense { 1 } else { r } {
            let window: Vec<usize> = if dense { (0..l).collect() } else { window(buckets, head, round, p, l) };
            let scores: Vec<f64> = window
                .iter()
                .map(|&j| {
                    let k = key(j, head);
                    let dot: f64 = (0..d).map(|c| q[c] as f64 * k[c]).sum();
                    // HF rounds the scores to f32 before masking; the self mask replaces.
                    if j == n {
                        SELF_MASK_VALUE as f64
                    } else {
                        dot as f32 as f64
                    }
                })
                .collect();
            let vh: Vec<f32> = window.iter().flat_map(|&j| v[(j * h + head) * d..][..d].to_vec()).collect();
            results.push(attend(&scores, d, |i| i, &vh));
        }
        let max = results.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
        let total = (max + results.iter().map(|x| (x.1 - max).exp()).sum::<f64>().ln()) as f32 as f64;
        for c in 0..d {
            let sum: f64 = results.iter().map(|(o, lse)| (lse - total).exp() * o[c]).sum();
            out[head * d + c] = sum as f32;
        }
    }
    out
}

/// HF's window of one (head, round): the stable argsort of the L buckets, the sorted index s
/// of position L - 1, sorted indices (s / C - before)·C + k (k < C·(1 + before + after)) mod
/// L, mapped back to positions (repeats kept).
fn window(buckets: &[f32], head: usize, round: usize, p: &DecodeAttend, l: usize) -> Vec<usize> {
    let (h, r) = (p.heads as usize, p.rounds as usize);
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by_key(|&j| (buckets[(j * h + head) * r + round] as u64, j));
    let s = order.iter().position(|&j| j == l - 1).expect("the new position is sorted somewhere") as i64;
    let (c, before) = (p.chunk as i64, p.before as i64);
    let start = (s / c - before) * c;
    let w = c * (1 + before + p.after as i64);
    (0..w).map(|k| order[(start + k).rem_euclid(l as i64) as usize]).collect()
}

/// `Graph::local_decode`: q [1, H·d], k, v [rows, H·d], position n -> [1, H·d].
pub fn local_step(q: &[f32], k: &[f32], v: &[f32], p: &DecodeLocal, n: usize) -> Vec<f32> {
    let h = p.heads as usize;
    let d = q.len() / h;
    // HF: past_states[:, start:] with start = (n // C - before) * C, a Python slice start.
    let start = (n as i64 / p.chunk as i64 - p.before as i64) * p.chunk as i64;
    let lo = if start >= 0 { start as usize } else { (n as i64 + start).max(0) as usize };
    let mut out = vec![0f32; h * d];
    for head in 0..h {
        let qh = &q[head * d..][..d];
        let scores: Vec<f64> = (lo..=n)
            .map(|j| {
                let kj = &k[(j * h + head) * d..][..d];
                let dot: f64 = (0..d).map(|c| qh[c] as f64 * (kj[c] as f64 / (d as f64).sqrt())).sum();
                dot as f32 as f64
            })
            .collect();
        let vh: Vec<f32> = (lo..=n).flat_map(|j| v[(j * h + head) * d..][..d].to_vec()).collect();
        let (o, _) = attend(&scores, d, |i| i, &vh);
        for c in 0..d {
            out[head * d + c] = o[c] as f32;
        }
    }
    out
}

/// The registry entry of the family (see `cpu::eval`).
pub fn eval(cx: &super::Cx, op: &LshDecodeOp) -> Result<HostData> {
    let name = op.name();
    let (slot, cache) = match op {
        LshDecodeOp::Hash(p) => (p.slot, p.stride.is_none().then_some(2)),
        LshDecodeOp::Attend(p) => (p.slot, Some(0)),
        LshDecodeOp::Local(p) => (p.slot, Some(1)),
    };
    if let Some(i) = cache {
        let (n, rows) = (cx.slot(slot) as usize, cx.shapes[i][0]);
        if n >= rows {
            return Err(Error::Usage(format!(
                "{name}: position {n} (runtime slot {slot}) is outside the cache's {rows} rows"
            )));
        }
    }
    Ok(HostData::F32(match op {
        LshDecodeOp::Hash(p) => {
            let cache = if p.stride.is_none() { Some(cx.f32(2, name)?) } else { None };
            hash(cx.f32(0, name)?, cx.f32(1, name)?, cache, p, cx.slot(p.slot) as usize)
        }
        LshDecodeOp::Attend(p) => {
            attend_step(cx.f32(0, name)?, cx.f32(1, name)?, cx.f32(2, name)?, p, cx.slot(p.slot) as usize)
        }
        LshDecodeOp::Local(p) => {
            local_step(cx.f32(0, name)?, cx.f32(1, name)?, cx.f32(2, name)?, p, cx.slot(p.slot) as usize)
        }
    }))
}
