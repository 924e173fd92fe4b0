//! Attention family (shaders/attention.wgsl): fused prefill attention, split-key decode
//! attention and the merge of its parts. The shader's header explains the algorithm; this
//! module owns the tile sizes, the split choice and the launch grids.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered, Operand, Slot};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::{AttentionImpl, AttentionParams, KeyRange};
use crate::tensor::DType;

/// The op's head-size and split limits (the decode kernel keeps the query, MAX_D4 vec4, in
/// workgroup memory and gives each of its 64 invocations at least one vec4 column).
pub use crate::graph::{MAX_HEAD_DIM, MAX_SPLITS};
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
/// `AttentionImpl::Auto` uses split-key decode for up to this many queries over a KV cache.
pub const DECODE_MAX_QUERIES: usize = 4;
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
    /// Split-key decode in a single part, normalised into the output (no merge).
    DecodeSingle { mask: bool, kv_f16: bool },
    /// Partials to the output.
    Merge,
}

impl Variant {
    pub fn family(self) -> &'static str {
        match self {
            Variant::Prefill { kv_f16: true, .. }
            | Variant::Decode { kv_f16: true, .. }
            | Variant::DecodeSingle { kv_f16: true, .. } => "attention_f16",
            _ => "attention",
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Prefill { mask: false, .. } => "attention_prefill",
            Variant::Prefill { mask: true, .. } => "attention_prefill_mask",
            Variant::Decode { mask: false, .. } => "attention_decode",
            Variant::Decode { mask: true, .. } => "attention_decode_mask",
            Variant::DecodeSingle { mask: false, .. } => "attention_decode_single",
            Variant::DecodeSingle { mask: true, .. } => "attention_decode_single_mask",
            Variant::Merge => "attention_merge",
        }
    }

    pub fn n_inputs(self) -> u32 {
        match self {
            Variant::Prefill { mask, .. } | Variant::Decode { mask, .. } | Variant::DecodeSingle { mask, .. } => {
                3 + mask as u32
            }
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

/// Launches of an attention node: one tiled pass, or split-key decode (each part of the key
/// range a workgroup writing unnormalised partials into scratch, then a merge into the
/// output; in one part, a single pass that normalises itself). Shapes were checked when the
/// node was built.
pub fn lower(cx: &Cx, a: &AttentionParams) -> Result<Lowered> {
    let (ctx, inputs, max_per_dim) = (cx.ctx, cx.inputs, cx.max_per_dim());
    let kv_f16 = inputs[1].dtype == DType::F16;
    if kv_f16 && !ctx.has(wgpu::Features::SHADER_F16) {
        return Err(Error::Feature {
            what: "attention over f16 keys and values (kernel family attention_f16)".into(),
            feature: "SHADER_F16",
            adapter: ctx.adapter().name.clone(),
        });
    }
    let base = params(a, inputs)?;
    let (lq, lk) = (base.lq as usize, base.lk as usize);
    let lowered = match choose(ctx, a, lq, lk) {
        None => {
            let l = prefill_layout(4 * base.d4 as usize);
            let p =
                Params { tq: l.per_query as u32, qpw: l.queries as u32, rs: l.row4 as u32, bk: l.keys as u32, ..base };
            let tiles = (p.lq as u64).div_ceil(l.queries as u64) * p.heads as u64;
            let key = KernelKey::Attention(Variant::Prefill { mask: a.mask, kv_f16 });
            Lowered::from(Dispatch::new(key, &p, grid_1d(tiles, 1, max_per_dim)?))
        }
        Some(1) => {
            let p = Params { splits: 1, ..base };
            let key = KernelKey::Attention(Variant::DecodeSingle { mask: a.mask, kv_f16 });
            Lowered::from(Dispatch::new(key, &p, grid_1d(p.heads as u64 * p.lq as u64, 1, max_per_dim)?))
        }
        Some(splits) => {
            let p = Params { splits, ..base };
            let d = 4 * p.d4 as usize;
            let parts = partials_len(splits, lq, p.heads as usize, d);
            as_u32("attention_decode partials", parts)?;
            let decode = Dispatch::new(KernelKey::Attention(Variant::Decode { mask: a.mask, kv_f16 }), &p, {
                grid_1d(splits as u64 * p.heads as u64 * p.lq as u64, 1, max_per_dim)?
            });
            let inputs: Vec<Slot> = (0..inputs.len()).map(Slot::Input).collect();
            let merge = Dispatch::new(KernelKey::Attention(Variant::Merge), &p, {
                grid_1d((lq * p.heads as usize * d / 4).div_ceil(DECODE_STEP) as u64, 1, max_per_dim)?
            });
            Lowered {
                dispatches: vec![
                    decode.bind(&[Slot::Scratch(0)], &inputs),
                    merge.bind(&[Slot::Output], &[Slot::Scratch(0)]),
                ],
                scratch: vec![4 * parts as u64],
                bounds: Vec::new(),
            }
        }
    };
    Ok(match a.keys {
        KeyRange::Runtime(slot) => lowered.with_bound(slot, lq, lk),
        KeyRange::All => lowered,
    })
}

/// None: the tiled kernel; Some(n): split-key decode in n parts. `Auto` decodes a few queries
/// over a KV cache; the part count follows the cache length on GPUs (one part per
/// KEYS_PER_SPLIT rows: each part is a workgroup, and a long cache needs many to fill the
/// device) and is 1 on CPU adapters (lavapipe, SwiftShader), where the heads already give
/// every core work and each extra workgroup only costs.
fn choose(ctx: &Context, a: &AttentionParams, lq: usize, lk: usize) -> Option<u32> {
    let auto_parts = || if ctx.adapter().device_type == "Cpu" { 1 } else { decode_splits(lk) };
    match a.imp {
        AttentionImpl::Tiled => None,
        AttentionImpl::SplitKeys(0) => Some(auto_parts()),
        AttentionImpl::SplitKeys(n) => Some(n),
        AttentionImpl::Auto => (matches!(a.keys, KeyRange::Runtime(_)) && lq <= DECODE_MAX_QUERIES).then(auto_parts),
    }
}

/// The constants shaders/attention.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[
        ("MAX_D4", (MAX_HEAD_DIM / 4) as u64),
        ("WG", WORKGROUP as u64),
        ("SLICE4", (SLICE / 4) as u64),
        ("TILE_VEC4", TILE_VEC4 as u64),
        ("PART_F32", PART_F32 as u64),
        ("MAX_BK", MAX_TILE_KEYS as u64),
        ("DWG", DECODE_STEP as u64),
    ])
}
