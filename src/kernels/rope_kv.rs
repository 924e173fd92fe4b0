//! Rope-KV family (shaders/rope_kv.wgsl): rotary embedding of a fused q/k/v projection with
//! the KV-cache append, one launch. Angles as in the rope family (shaders/rope_angle.wgsl).

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, rope, Cx, Dispatch, KernelKey, Lowered, Slot};
use crate::error::{Error, Result};
use crate::graph::{RopeKvParams, RopeMode};
use crate::tensor::DType;

/// Invocations per workgroup (one per pair of qkv elements).
pub const WORKGROUP: u32 = 256;

/// `kv_f16`: the caches hold f16 (module rope_kv_f16, needs SHADER_F16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub kv_f16: bool,
}

impl Variant {
    pub fn family(self) -> &'static str {
        if self.kv_f16 {
            "rope_kv_f16"
        } else {
            "rope_kv"
        }
    }

    pub fn entry_point(self) -> &'static str {
        "rope_kv"
    }

    /// (outputs, inputs): the rotated queries and both caches are written; qkv is read.
    pub fn io_counts(self) -> (u32, u32) {
        (3, 1)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    pairs: u32,
    heads: u32,
    kv_heads: u32,
    half_d: u32,
    slot: u32,
    rows: u32,
    halves: u32,
    pad: u32,
    r: [u32; 2],
    c: [u32; 2],
}

/// Launch for a rope_kv node (shapes checked by the builder): the output (rotated q) and the
/// two caches (inputs 1 and 2, in place) are written, qkv (input 0) is read; the new rows must
/// fit the caches on every run.
pub fn lower(cx: &Cx, op: &RopeKvParams) -> Result<Lowered> {
    let (qkv, cache) = (cx.shape(0), cx.shape(1));
    let kv_f16 = cx.inputs[1].dtype == DType::F16;
    if kv_f16 && !cx.ctx.has(wgpu::Features::SHADER_F16) {
        return Err(Error::Feature {
            what: "rotary embedding into an f16 KV cache (kernel family rope_kv_f16)".into(),
            feature: "SHADER_F16",
            adapter: cx.ctx.adapter().name.clone(),
        });
    }
    let (t, cols) = (qkv[0], qkv[1]);
    let d = cols / (op.heads + 2 * op.kv_heads) as usize;
    as_u32("rope_kv cache", cache[0] * cache[1])?;
    let pairs = as_u32("rope_kv input", t * cols)? / 2;
    let (r, c) = rope::turn_constants(op.theta, d);
    let params = Params {
        pairs,
        heads: op.heads,
        kv_heads: op.kv_heads,
        half_d: (d / 2) as u32,
        slot: op.slot,
        rows: as_u32("rope_kv cache rows", cache[0])?,
        halves: (op.mode == RopeMode::Halves) as u32,
        pad: 0,
        r,
        c,
    };
    let grid = grid_1d(pairs as u64, WORKGROUP, cx.max_per_dim())?;
    let d = Dispatch::new(KernelKey::RopeKv(Variant { kv_f16 }), &params, grid)
        .bind(&[Slot::Output, Slot::Input(1), Slot::Input(2)], &[Slot::Input(0)]);
    Ok(Lowered::from(d).with_bound(op.slot, t, cache[0]))
}

/// The constants shaders/rope_kv.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
