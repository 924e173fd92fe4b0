//! References for the sort family: what the ops mean, by the standard library's stable sort
//! and plain loops (none of the GPU's passes).

use crate::error::{Error, Result};
use crate::graph::SortOp;
use crate::tensor::HostData;

/// Stable ascending argsort of each row of `n` keys by their low `key_bits` bits.
pub fn argsort(keys: &[u32], n: usize, key_bits: u32) -> Vec<u32> {
    let mask = if key_bits >= 32 { u32::MAX } else { (1u32 << key_bits) - 1 };
    let mut out = Vec::with_capacity(keys.len());
    for row in keys.chunks(n) {
        let mut idx: Vec<u32> = (0..n as u32).collect();
        // sort_by_key is stable: equal keys keep ascending columns.
        idx.sort_by_key(|&i| row[i as usize] & mask);
        out.extend(idx);
    }
    out
}

/// inv[j] = the smallest i with perm[i] == j, or n when none (per row of `n`).
pub fn inverse_permutation(perm: &[u32], n: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(perm.len());
    for row in perm.chunks(n) {
        let mut inv = vec![n as u32; n];
        for (i, &j) in row.iter().enumerate() {
            if (j as usize) < n && inv[j as usize] == n as u32 {
                inv[j as usize] = i as u32;
            }
        }
        out.extend(inv);
    }
    out
}

/// out[b, i, :] = x[b, idx[b, i], :] for x [rows, n, d] and idx [rows, m]; zeros for an
/// index >= n.
pub fn gather_rows(x: &[f32], idx: &[u32], n: usize, m: usize, d: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * d);
    for (r, &j) in idx.iter().enumerate() {
        let b = r / m;
        match (j as usize) < n {
            true => out.extend_from_slice(&x[(b * n + j as usize) * d..][..d]),
            false => out.extend(std::iter::repeat_n(0.0, d)),
        }
    }
    out
}

fn u32s<'a>(what: &str, h: &'a HostData) -> Result<&'a [u32]> {
    match h {
        HostData::U32(v) => Ok(v),
        other => Err(Error::DType { what: what.into(), expected: "u32".into(), got: other.dtype().to_string() }),
    }
}

/// Evaluates a sort-family op on host data.
pub fn eval(op: &SortOp, inputs: &[&HostData], shapes: &[&[usize]]) -> Result<HostData> {
    let last = |s: &[usize]| s[s.len() - 1];
    Ok(match *op {
        SortOp::Argsort { key_bits } => {
            HostData::U32(argsort(u32s("argsort keys", inputs[0])?, last(shapes[0]), key_bits as u32))
        }
        SortOp::Inverse => HostData::U32(inverse_permutation(u32s("inverse_permutation", inputs[0])?, last(shapes[0]))),
        SortOp::Gather => {
            let (sx, idx) = (shapes[0], u32s("gather_rows idx", inputs[1])?);
            let (n, m) = (sx[sx.len() - 2], last(shapes[1]));
            HostData::F32(gather_rows(inputs[0].as_f32("gather_rows")?, idx, n, m, last(sx)))
        }
    })
}
