//! Reference for shaders/rope_kv.wgsl: the op's meaning from the parts' references. The q, k
//! and v heads are cut out of each qkv row, q and k rotated by `rope::rope` (f64), and k and v
//! written into the caches by `copy::write_rows` (rounded to f16 for an f16 cache).

use super::{copy, rope, Cx};
use crate::error::Result;
use crate::graph::RopeKvParams;
use crate::tensor::HostData;

/// Sizes of a rope_kv node: tokens, query heads, KV heads, head size.
struct Dims {
    t: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
}

fn dims(cx: &Cx, op: &RopeKvParams) -> Dims {
    let (heads, kv_heads) = (op.heads as usize, op.kv_heads as usize);
    let (t, cols) = (cx.shapes[0][0], cx.shapes[0][1]);
    Dims { t, heads, kv_heads, d: cols / (heads + 2 * kv_heads) }
}

/// Heads `first..first + count` of every qkv row, as [t, count, d] values.
fn heads_of(qkv: &[f32], n: &Dims, first: usize, count: usize) -> Vec<f32> {
    let row = (n.heads + 2 * n.kv_heads) * n.d;
    (0..n.t).flat_map(|t| qkv[t * row + first * n.d..][..count * n.d].iter().copied()).collect()
}

/// The rotated queries [t, H, d].
pub fn eval(cx: &Cx, op: &RopeKvParams) -> Result<HostData> {
    let n = dims(cx, op);
    let q = heads_of(cx.f32(0, "rope_kv")?, &n, 0, n.heads);
    Ok(HostData::F32(rope::rope(&q, &[n.t, n.heads, n.d], op.mode, op.theta, cx.slot(op.slot))))
}

/// The key and value caches after the node, as (input index, new contents).
pub fn state_writes(cx: &Cx, op: &RopeKvParams) -> Result<Vec<(usize, HostData)>> {
    let n = dims(cx, op);
    let qkv = cx.f32(0, "rope_kv")?;
    let start = cx.slot(op.slot);
    let k = heads_of(qkv, &n, n.heads, n.kv_heads);
    let k = rope::rope(&k, &[n.t, n.kv_heads, n.d], op.mode, op.theta, start);
    let v = heads_of(qkv, &n, n.heads + n.kv_heads, n.kv_heads);
    let cols = n.kv_heads * n.d;
    let write = |cache: &HostData, rows: &[f32]| match cache {
        HostData::F16(c) => {
            let c: Vec<f32> = c.iter().map(|x| x.to_f32()).collect();
            let y = copy::write_rows(&c, rows, cols, start as usize);
            HostData::F16(y.into_iter().map(half::f16::from_f32).collect())
        }
        other => HostData::F32(copy::write_rows(&other.to_f32(), rows, cols, start as usize)),
    };
    Ok(vec![(1, write(cx.inputs[1], &k)), (2, write(cx.inputs[2], &v))])
}
