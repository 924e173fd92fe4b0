//! The `lsh` family (shaders/lsh.wgsl): Reformer hashing, chunked attention over the sorted
//! order (a key-norm pass into scratch, then the attention), the combination of rounds, and
//! local attention. The shader's header explains each entry point; this module owns the
//! params and grids.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey, Lowered, Operand, Slot};
use crate::error::{Error, Result};
use crate::graph::LshOp;
use crate::tensor::DType;

/// Invocations per workgroup of every `lsh` kernel.
pub const WORKGROUP: u32 = 64;
/// Most hashing rounds `lsh_combine` takes (its per-round weights live in registers).
pub use crate::graph::LSH_MAX_ROUNDS as MAX_ROUNDS;

/// The entry points. Each binds a padding mask in its last read slot; nodes without one bind
/// their first input there instead (params `masked` = 0: never read), so one pipeline layout
/// serves both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Hash,
    /// The hash on subgroup broadcasts (module lsh_subgroup), for CPU adapters.
    HashSubgroup,
    KeyNorm,
    Chunk,
    Combine,
    Local,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Hash => "lsh_hash",
            Variant::HashSubgroup => "lsh_hash_sg",
            Variant::KeyNorm => "lsh_key_norm",
            Variant::Chunk => "lsh_chunk",
            Variant::Combine => "lsh_combine",
            Variant::Local => "local_attention",
        }
    }

    /// The shader module holding the entry point.
    pub fn family(self) -> &'static str {
        match self {
            Variant::HashSubgroup => "lsh_subgroup",
            _ => "lsh",
        }
    }

    /// Storage bindings read (after the one written).
    pub fn n_inputs(self) -> u32 {
        match self {
            // qk, rotations, mask
            Variant::Hash | Variant::HashSubgroup => 3,
            Variant::KeyNorm => 1,
            // qk, v, perm, the key norms (scratch), mask
            Variant::Chunk => 5,
            Variant::Combine => 2,
            // q, k, v, mask
            Variant::Local => 4,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    b: u32,
    l: u32,
    d4: u32,
    n: u32,
    rounds: u32,
    s: u32,
    chunk: u32,
    before: u32,
    after: u32,
    causal: u32,
    mask_f32: u32,
    stride: u32,
    count: u32,
    n_factors: u32,
    scale: f32,
    masked: u32,
    factors: [u32; 4],
}

fn mask_f32(inputs: &[Operand], i: usize, on: bool) -> u32 {
    (on && inputs[i].dtype == DType::F32) as u32
}

fn key(v: Variant) -> KernelKey {
    KernelKey::Lsh(v)
}

/// The node's inputs `first..` in order, then the mask (input `mask_at`) or a stand-in.
fn reads(n: usize, mask: bool, mask_at: usize) -> Vec<Slot> {
    let mut r: Vec<Slot> = (0..n).map(Slot::Input).collect();
    r.push(if mask { Slot::Input(mask_at) } else { Slot::Input(0) });
    r
}

/// The hash kernel for this adapter. On CPU adapters a load that every lane of a subgroup
/// makes from one address is still made once per lane, and the hash's rotation reads are
/// such loads: the broadcast kernel makes one per 8 columns (measured on lavapipe in
/// BENCHMARKS.md, "Where the LSH time goes"). GPUs serve a uniform load once through their
/// caches, so they keep the plain kernel, which needs no SUBGROUP feature.
pub fn hash_kernel(ctx: &crate::gpu::Context) -> Variant {
    if super::gemm::prefers_subgroup(ctx) {
        Variant::HashSubgroup
    } else {
        Variant::Hash
    }
}

/// Launches of one `lsh` node. Shapes were checked when the node was built.
pub fn lower(cx: &super::Cx, op: &LshOp) -> Result<Lowered> {
    let (inputs, out, max) = (cx.inputs, cx.out, cx.max_per_dim());
    let s = inputs[0].shape;
    let (b, l) = (s[0], s[1]);
    let d = if matches!(op, LshOp::Combine { .. }) { out[2] } else { s[2] };
    for (i, o) in inputs.iter().enumerate() {
        as_u32(&format!("{} input {i}", op.name()), o.shape.iter().product::<usize>() + 1)?;
    }
    as_u32(&format!("{} output", op.name()), out.iter().product())?;
    let base =
        Params { b: b as u32, l: l as u32, d4: (d / 4) as u32, scale: 1.0 / (d as f32).sqrt(), ..Default::default() };
    let grid = |n: usize| grid_1d(n as u64, WORKGROUP, max);
    Ok(match *op {
        LshOp::Hash { buckets, mask } => {
            let rounds = inputs[1].shape[2];
            let mut factors = [0u32; 4];
            factors.copy_from_slice(&buckets.factors);
            let p = Params {
                n: (rounds * l) as u32,
                rounds: rounds as u32,
                s: buckets.rotation_half() as u32,
                stride: buckets.count() + mask as u32,
                count: buckets.count(),
                n_factors: buckets.len as u32,
                mask_f32: mask_f32(inputs, 2, mask),
                masked: mask as u32,
                factors,
                ..base
            };
            // One workgroup per (row, round) and tile of WORKGROUP tokens (see the shader).
            let tiles = (l as u32).div_ceil(WORKGROUP);
            let rows = (b * rounds) as u32;
            if tiles > max || rows > max {
                return Err(Error::Limit {
                    what: format!("LSH hashing of {l} tokens in {b} rows x {rounds} rounds"),
                    needed: u64::from(tiles.max(rows)),
                    max: u64::from(max),
                    limit: "max_compute_workgroups_per_dimension",
                });
            }
            Dispatch::new(key(hash_kernel(cx.ctx)), &p, [tiles, rows, 1])
                .bind(&[Slot::Output], &reads(2, mask, 2))
                .into()
        }
        LshOp::ChunkAttention { chunk, before, after, causal, mask } => {
            let n = inputs[2].shape[1];
            let p = Params {
                n: n as u32,
                chunk,
                before,
                after,
                causal: causal as u32,
                mask_f32: mask_f32(inputs, 3, mask),
                masked: mask as u32,
                ..base
            };
            let norms =
                Dispatch::new(key(Variant::KeyNorm), &p, grid(b * l)?).bind(&[Slot::Scratch(0)], &[Slot::Input(0)]);
            let mut r = reads(3, mask, 3);
            r.insert(3, Slot::Scratch(0));
            let attend = Dispatch::new(key(Variant::Chunk), &p, grid(b * n)?).bind(&[Slot::Output], &r);
            Lowered { dispatches: vec![norms, attend], scratch: vec![4 * (b * l) as u64], bounds: Vec::new() }
        }
        LshOp::Combine { rounds } => {
            if rounds as usize > MAX_ROUNDS {
                return Err(Error::Limit {
                    what: "lsh_combine rounds".into(),
                    needed: rounds as u64,
                    max: MAX_ROUNDS as u64,
                    limit: "the lsh kernels' register arrays",
                });
            }
            let n = s[1];
            let p = Params { l: (n / rounds as usize) as u32, n: n as u32, rounds, ..base };
            Dispatch::new(key(Variant::Combine), &p, grid(b * n / rounds as usize)?).into()
        }
        LshOp::Local { chunk, before, after, causal, mask } => {
            let p = Params {
                chunk,
                before,
                after,
                causal: causal as u32,
                mask_f32: mask_f32(inputs, 3, mask),
                masked: mask as u32,
                ..base
            };
            Dispatch::new(key(Variant::Local), &p, grid(b * l)?).bind(&[Slot::Output], &reads(3, mask, 3)).into()
        }
    })
}

/// The constants shaders/lsh.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
