//! Reference for shaders/sample.wgsl: the same definitions in plain loops, sums in f64.
//! The GPU agrees except where its f32 sums round across a decision boundary; `sample_row`
//! reports how far the decisions were from their boundaries so tests can tell the two apart.

use super::Cx;
use crate::error::Result;
use crate::graph::SampleOp;
use crate::tensor::HostData;

/// Temperatures below this (or NaN) sample greedily, as in the shader.
pub const MIN_TEMPERATURE: f32 = 1e-20;

/// torch.argmax over each row of `n`: the first index of the largest value, NaN counting as
/// the largest.
pub fn argmax(x: &[f32], n: usize) -> Vec<u32> {
    x.chunks(n).map(argmax_row).collect()
}

fn argmax_row(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if row[best].is_nan() {
            break;
        }
        if v.is_nan() || v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// PCG hash (as in the shader): the draw for `row` is `pcg(pcg(seed) + row)`.
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// The uniform number in [0, 1) drawn for (`seed`, `row`): 24 bits of the hash.
pub fn uniform(seed: u32, row: u32) -> f64 {
    (pcg(pcg(seed).wrapping_add(row)) >> 8) as f64 / 16777216.0
}

/// One row's draw, with what tests need to judge a GPU result.
#[derive(Clone, Debug)]
pub struct RowDraw {
    pub token: u32,
    /// The greedy path was taken (temperature ~0, top_k = 1, or no finite largest logit).
    pub greedy: bool,
    /// exp((l_i - max) / T) per element (0 for NaN and -inf); empty when greedy.
    pub weights: Vec<f64>,
    /// Members of C, the candidates left by top-k then top-p; empty when greedy.
    pub candidates: Vec<bool>,
    /// The uniform number of the draw.
    pub u: f64,
    /// Smallest distance, relative to the mass involved, between a sum a decision depended on
    /// (top-p's cumulative mass, the draw's running sum) and the value it was compared with.
    /// Infinite when nothing was compared (greedy, or exact counts only).
    pub margin: f64,
    /// The part of `margin` from top-p's choice of the candidate set alone.
    pub margin_top_p: f64,
}

/// Draws from each row of `n` logits; see `sample_row`.
pub fn sample(x: &[f32], n: usize, top_k: u32, top_p: f32, temperature: f32, seed: u32) -> Vec<u32> {
    x.chunks(n).enumerate().map(|(r, row)| sample_row(row, top_k, top_p, temperature, seed, r as u32).token).collect()
}

/// The sampler of shaders/sample.wgsl on one row: NaN logits count as -inf; greedy when the
/// temperature is below `MIN_TEMPERATURE`, top_k = 1, or the largest logit is infinite;
/// otherwise weights exp((l - max) / T), top-k keeps {l >= k-th largest} (ties kept), top-p
/// keeps {l >= t} for the largest t whose mass reaches top_p of the top-k mass, and the token
/// is the first candidate, in index order, whose running mass exceeds u · (candidate mass).
pub fn sample_row(row: &[f32], top_k: u32, top_p: f32, temperature: f32, seed: u32, row_index: u32) -> RowDraw {
    let n = row.len();
    let l: Vec<f32> = row.iter().map(|&v| if v.is_nan() { f32::NEG_INFINITY } else { v }).collect();
    let greedy_token = argmax_row(&l);
    let m = l[greedy_token as usize];
    let u = uniform(seed, row_index);
    if temperature.is_nan() || temperature < MIN_TEMPERATURE || top_k == 1 || !m.is_finite() {
        return RowDraw {
            token: greedy_token,
            greedy: true,
            weights: vec![],
            candidates: vec![],
            u,
            margin: f64::INFINITY,
            margin_top_p: f64::INFINITY,
        };
    }
    let t = temperature as f64;
    let e: Vec<f64> = l.iter().map(|&v| ((v as f64 - m as f64) / t).exp()).collect();
    // Indices by decreasing value (sorting is fine in a reference).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
    let tau_k = if top_k > 1 && (top_k as usize) < n { l[order[top_k as usize - 1]] } else { f32::NEG_INFINITY };
    let z_k: f64 = (0..n).filter(|&i| l[i] >= tau_k).map(|i| e[i]).sum();
    let mut margin = f64::INFINITY;
    let mut tau_c = tau_k;
    if top_p < 1.0 {
        // Walk the distinct values from the top, each with all its ties, until the mass reaches
        // top_p · Z_k.
        let goal = top_p as f64 * z_k;
        let mut cum = 0.0;
        let mut j = 0;
        while j < n && l[order[j]] >= tau_k {
            let v = l[order[j]];
            let before = cum;
            while j < n && l[order[j]] == v {
                cum += e[order[j]];
                j += 1;
            }
            if cum >= goal {
                tau_c = v;
                margin = margin.min((cum - goal).abs() / z_k).min((goal - before).abs() / z_k);
                break;
            }
        }
    }
    let margin_top_p = margin;
    let candidates: Vec<bool> = l.iter().map(|&v| v >= tau_c).collect();
    let z_c: f64 = (0..n).filter(|&i| candidates[i]).map(|i| e[i]).sum();
    let target = u * z_c;
    let mut token = None;
    let mut run = 0.0;
    for i in (0..n).filter(|&i| candidates[i] && e[i] > 0.0) {
        let before = run;
        run += e[i];
        if token.is_none() && run > target {
            token = Some(i as u32);
            margin = margin.min((target - before).abs() / z_c).min((run - target).abs() / z_c);
        }
    }
    // Rounding can leave the target at the very top: the last candidate takes it.
    let token = token
        .unwrap_or_else(|| (0..n).rev().find(|&i| candidates[i] && e[i] > 0.0).unwrap_or(greedy_token as usize) as u32);
    RowDraw { token, greedy: false, weights: e, candidates, u, margin, margin_top_p }
}

/// The reference of an argmax or sample node (u32 results).
pub fn eval(cx: &Cx, op: &SampleOp) -> Result<HostData> {
    let (x, n) = (cx.f32(0, "sample")?, cx.row_len(0));
    Ok(HostData::U32(match *op {
        SampleOp::Argmax => argmax(x, n),
        SampleOp::Draw { top_k, top_p, temperature_slot, seed_slot } => {
            let t = f32::from_bits(cx.slot(temperature_slot));
            sample(x, n, top_k, top_p, t, cx.slot(seed_slot))
        }
    }))
}
