//! Attention family (shaders/attention.wgsl): fused prefill attention, split-key decode
//! attention and the merge of its parts. The shader's header explains the algorithm; this
//! module owns the tile sizes, the split choice and the launch grids.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey, Operand};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::{AttentionParams, KeyRange, Op};
use crate::tensor::DType;

/// Largest head size: the decode kernel keeps the query (MAX_D4 vec4) in workgroup memory and
/// gives each of its 64 invocations at least one vec4 column of the output.
pub const MAX_HEAD_DIM: usize = 256;
/// Invocations per workgroup of every attention kernel.
pub const WORKGROUP: usize = 64;
/// Prefill: head dimensions owned by one invocation (16 vec4; SLICE4 in the shader).
pub const SLICE: usize = 64;
/// Prefill: vec4 slots of each of the K and V tiles in workgroup memory.
pub const TILE_VEC4: usize = 336;
/// Prefill: f32 slots for the tile's partial dot products (keys x invocations).
pub const PART_F32: usize = 1344;
/// Prefill: most keys per tile (PART_F32 / WORKGROUP).
pub const MAX_TILE_KEYS: usize = PART_F32 / WORKGROUP;
/// Decode: keys scored per step (one per invocation) and the unit parts are made of.
pub const DECODE_STEP: usize = 64;
/// Decode: cache rows per part that make a split worthwhile, and the most parts.
pub const KEYS_PER_SPLIT: usize = 256;
pub const MAX_SPLITS: usize = 64;
const NO_SLOT: u32 = u32::MAX;

/// How the prefill kernel lays out head size `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefillLayout {
    /// Invocations per query, T = ceil(d / SLICE).
    pub per_query: usize,
    /// Queries per workgroup, WORKGROUP / T.
    pub queries: usize,
    /// Padded K/V tile row length in vec4, T · SLICE / 4 (>= d / 4; the padding is zeros).
    pub row4: usize,
    /// Keys per tile: as many as the K/V tiles and the partial products allow.
    pub keys: usize,
}

/// The prefill kernel's layout for head size `d` (see "Prefill" in shaders/attention.wgsl).
pub fn prefill_layout(d: usize) -> PrefillLayout {
    let per_query = d.div_ceil(SLICE).max(1);
    let row4 = per_query * SLICE / 4;
    PrefillLayout { per_query, queries: WORKGROUP / per_query, row4, keys: (TILE_VEC4 / row4).clamp(1, MAX_TILE_KEYS) }
}

/// Parts the key range of a decode node is split into, fixed when the graph is built from
/// the cache's capacity `lk`: about one per KEYS_PER_SPLIT rows (at most MAX_SPLITS). At run
/// time the keys that exist are spread evenly over the parts in whole 64-key steps, so a
/// short cache leaves the last parts empty (and cheap).
pub fn decode_splits(lk: usize) -> u32 {
    lk.div_ceil(KEYS_PER_SPLIT).clamp(1, MAX_SPLITS) as u32
}

/// Keys per part for a query that sees `n` keys, split `splits` ways: an even share rounded up
/// to whole DECODE_STEPs (the shader's rule; the CPU reference uses this one).
pub fn decode_chunk(n: usize, splits: usize) -> usize {
    (n.div_ceil(splits.max(1)) + DECODE_STEP - 1).max(DECODE_STEP) / DECODE_STEP * DECODE_STEP
}

/// f32 elements of a decode node's partials: per (split, query, head) d accumulator values,
/// and then per (split, query, head) one (max, sum, 0, 0) quadruple.
pub fn partials_len(splits: u32, lq: usize, heads: usize, d: usize) -> usize {
    splits as usize * lq * heads * (d + 4)
}

/// `kv_f16`: k and v hold f16 (an f16 KV cache; module attention_f16, needs SHADER_F16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Tiles of queries against streamed tiles of keys and values.
    Prefill { mask: bool, kv_f16: bool },
    /// One part of the key range per workgroup, written as partials.
    Decode { mask: bool, kv_f16: bool },
    /// Partials to the output.
    Merge,
}

impl Variant {
    pub fn family(self) -> &'static str {
        match self {
            Variant::Prefill { kv_f16: true, .. } | Variant::Decode { kv_f16: true, .. } => "attention_f16",
            _ => "attention",
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Prefill { mask: false, .. } => "attention_prefill",
            Variant::Prefill { mask: true, .. } => "attention_prefill_mask",
            Variant::Decode { mask: false, .. } => "attention_decode",
            Variant::Decode { mask: true, .. } => "attention_decode_mask",
            Variant::Merge => "attention_merge",
        }
    }

    pub fn n_inputs(self) -> u32 {
        match self {
            Variant::Prefill { mask, .. } | Variant::Decode { mask, .. } => 3 + mask as u32,
            Variant::Merge => 1,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    lq: u32,
    lk: u32,
    heads: u32,
    kv_heads: u32,
    d4: u32,
    group: u32,
    causal: u32,
    past: u32,
    past_slot: u32,
    scale: f32,
    mask_f32: u32,
    bk: u32,
    splits: u32,
    tq: u32,
    qpw: u32,
    rs: u32,
}

fn params(a: &AttentionParams, inputs: &[Operand]) -> Result<Params> {
    let (sq, sk) = (inputs[0].shape, inputs[1].shape);
    let (lq, heads, d) = (sq[0], sq[1], sq[2]);
    let (lk, kv_heads) = (sk[0], sk[1]);
    as_u32("attention q", lq * heads * d)?;
    as_u32("attention k", lk * kv_heads * d)?;
    let (past, past_slot) = match a.keys {
        KeyRange::All => (lk.saturating_sub(lq) as u32, NO_SLOT),
        KeyRange::Runtime(slot) => (0, slot),
    };
    Ok(Params {
        lq: lq as u32,
        lk: lk as u32,
        heads: heads as u32,
        kv_heads: kv_heads as u32,
        d4: (d / 4) as u32,
        group: (heads / kv_heads) as u32,
        causal: a.causal as u32,
        past,
        past_slot,
        scale: a.scale,
        mask_f32: (a.mask && inputs[3].dtype == DType::F32) as u32,
        ..Default::default()
    })
}

/// Launch for an attention, attention_decode or attention_merge node. Shapes were checked
/// when the node was built.
pub fn dispatch(ctx: &Context, op: &Op, inputs: &[Operand], out: &[usize], max_per_dim: u32) -> Result<Dispatch> {
    let kv_f16 = inputs.get(1).is_some_and(|k| k.dtype == DType::F16) && !matches!(op, Op::AttentionMerge { .. });
    if kv_f16 && !ctx.has(wgpu::Features::SHADER_F16) {
        return Err(Error::Feature {
            what: "attention over f16 keys and values (kernel family attention_f16)".into(),
            feature: "SHADER_F16",
            adapter: ctx.adapter().name.clone(),
        });
    }
    let (key, p, groups) = match *op {
        Op::Attention(a) => {
            let base = params(&a, inputs)?;
            let l = prefill_layout(4 * base.d4 as usize);
            let p =
                Params { tq: l.per_query as u32, qpw: l.queries as u32, rs: l.row4 as u32, bk: l.keys as u32, ..base };
            let tiles = (p.lq as u64).div_ceil(l.queries as u64) * p.heads as u64;
            (Variant::Prefill { mask: a.mask, kv_f16 }, p, tiles)
        }
        Op::AttentionDecode { params: a, splits } => {
            let p = Params { splits, ..params(&a, inputs)? };
            as_u32(
                "attention_decode partials",
                partials_len(splits, p.lq as usize, p.heads as usize, 4 * p.d4 as usize),
            )?;
            (Variant::Decode { mask: a.mask, kv_f16 }, p, splits as u64 * p.heads as u64 * p.lq as u64)
        }
        Op::AttentionMerge { splits } => {
            let (lq, heads, d) = (out[0], out[1], out[2]);
            let p = Params { lq: lq as u32, heads: heads as u32, d4: (d / 4) as u32, splits, ..Default::default() };
            (Variant::Merge, p, (lq * heads * d / 4).div_ceil(DECODE_STEP) as u64)
        }
        _ => unreachable!("attention::dispatch called for {op:?}"),
    };
    Ok(Dispatch {
        key: KernelKey::Attention(key),
        params: bytemuck::bytes_of(&p).to_vec(),
        workgroups: grid_1d(groups, 1, max_per_dim)?,
    })
}
