//! The `lsh_decode` family (shaders/lsh_decode.wgsl): Reformer's cached decoding step, the new
//! token's buckets and its LSH or local attention over per-layer caches. The shader's header
//! explains each entry point and how the LSH window is found without a sort; this module owns
//! the params and grids.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey, Lowered, Slot};
use crate::error::Result;
use crate::graph::LshDecodeOp;

/// Invocations per workgroup: the attention kernels scan and reduce over it.
pub const WORKGROUP: u32 = 256;

/// The entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Hash,
    HashStep,
    Attend,
    Combine,
    Local,
}

impl Variant {
    /// Every variant (each compiles to one pipeline).
    pub const ALL: [Variant; 5] = [Variant::Hash, Variant::HashStep, Variant::Attend, Variant::Combine, Variant::Local];

    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Hash => "lsh_decode_hash",
            Variant::HashStep => "lsh_decode_hash_step",
            Variant::Attend => "lsh_decode_attend",
            Variant::Combine => "lsh_decode_combine",
            Variant::Local => "local_decode",
        }
    }

    /// Storage bindings read (after the one written).
    pub fn n_inputs(self) -> u32 {
        match self {
            // qk, rotations
            Variant::Hash => 2,
            // qk, rotations, bucket cache; qk, v, bucket cache; q, k, v
            Variant::HashStep | Variant::Attend | Variant::Local => 3,
            // the per-round results (scratch)
            Variant::Combine => 1,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    heads: u32,
    rounds: u32,
    d: u32,
    rows: u32,
    s: u32,
    stride: u32,
    count: u32,
    n_factors: u32,
    chunk: u32,
    before: u32,
    after: u32,
    dense_until: u32,
    slot: u32,
    scale: f32,
    pad0: u32,
    pad1: u32,
    factors: [u32; 4],
}

fn key(v: Variant) -> KernelKey {
    KernelKey::LshDecode(v)
}

/// Launches of one `lsh_decode` node. Shapes were checked when the node was built.
pub fn lower(cx: &super::Cx, op: &LshDecodeOp) -> Result<Lowered> {
    for (i, o) in cx.inputs.iter().enumerate() {
        as_u32(&format!("{} input {i}", op.name()), o.shape.iter().product::<usize>() + 1)?;
    }
    let rows = cx.shape(0)[0];
    Ok(match *op {
        LshDecodeOp::Hash(h) => {
            let d = cx.shape(0)[1] / h.heads as usize;
            let p = Params {
                heads: h.heads,
                rounds: h.rounds,
                d: d as u32,
                rows: rows as u32,
                s: h.buckets.rotation_half() as u32,
                stride: h.stride.unwrap_or(0),
                count: h.buckets.count(),
                n_factors: h.buckets.len as u32,
                slot: h.slot,
                factors: h.buckets.factors,
                ..Default::default()
            };
            match h.stride {
                Some(_) => {
                    let n = rows as u64 * (h.heads * h.rounds) as u64;
                    let grid = grid_1d(n, WORKGROUP, cx.max_per_dim())?;
                    Dispatch::new(key(Variant::Hash), &p, grid).into()
                }
                None => Lowered::from(Dispatch::new(key(Variant::HashStep), &p, [1, 1, 1])).with_bound(
                    h.slot,
                    1,
                    cx.shape(2)[0],
                ),
            }
        }
        LshDecodeOp::Attend(a) => {
            let d = cx.shape(0)[1] / a.heads as usize;
            let p = Params {
                heads: a.heads,
                rounds: a.rounds,
                d: d as u32,
                rows: rows as u32,
                count: a.count,
                chunk: a.chunk,
                before: a.before,
                after: a.after,
                dense_until: a.dense_until,
                slot: a.slot,
                scale: 1.0 / (d as f32).sqrt(),
                ..Default::default()
            };
            let cols = a.heads * a.rounds;
            // Pass 1: one workgroup per (head, round) into scratch [H·R, d + 1]; pass 2 combines.
            let attend = Dispatch::new(key(Variant::Attend), &p, [cols, 1, 1])
                .bind(&[Slot::Scratch(0)], &[Slot::Input(0), Slot::Input(1), Slot::Input(2)]);
            let combine =
                Dispatch::new(key(Variant::Combine), &p, [a.heads, 1, 1]).bind(&[Slot::Output], &[Slot::Scratch(0)]);
            Lowered {
                dispatches: vec![attend, combine],
                scratch: vec![4 * cols as u64 * (d as u64 + 1)],
                bounds: vec![],
            }
            .with_bound(a.slot, 1, rows)
        }
        LshDecodeOp::Local(l) => {
            let d = cx.shape(0)[1] / l.heads as usize;
            let p = Params {
                heads: l.heads,
                d: d as u32,
                rows: cx.shape(1)[0] as u32,
                chunk: l.chunk,
                before: l.before,
                slot: l.slot,
                scale: 1.0 / (d as f32).sqrt(),
                ..Default::default()
            };
            Lowered::from(Dispatch::new(key(Variant::Local), &p, [l.heads, 1, 1])).with_bound(l.slot, 1, cx.shape(1)[0])
        }
    })
}

/// The constants shaders/lsh_decode.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
