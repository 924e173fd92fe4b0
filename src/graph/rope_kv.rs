//! Builder of the fused rotary embedding + KV-cache append (`Op::RopeKv`): the step of a
//! decoder layer between its fused Q/K/V projection and attention, in one kernel.
//!
//! ```
//! use webformer::{DType, Graph, RopeKvParams, RopeMode};
//! let mut g = Graph::new();
//! // One token, 9 query heads and 3 KV heads of 64: the projection's (9 + 2·3)·64 columns.
//! let qkv = g.input("qkv", &[1, 960], DType::F32).unwrap();
//! let k_cache = g.state("k", &[2048, 192], DType::F32).unwrap();
//! let v_cache = g.state("v", &[2048, 192], DType::F32).unwrap();
//! let p = RopeKvParams { heads: 9, kv_heads: 3, mode: RopeMode::Adjacent, theta: 10000.0, slot: 0 };
//! let q = g.rope_kv(qkv, k_cache, v_cache, p).unwrap();
//! assert_eq!(g.node(q).shape, vec![1, 9, 64]);
//! ```

use serde::Serialize;

use super::{check_slot, shape_err, Graph, NodeId, NodeKind, Op, RopeMode};
use crate::error::{Error, Result};
use crate::tensor::DType;

/// Rotary embedding of the query and key heads of a fused projection, with the keys and values
/// written into a KV cache. Inputs: qkv [T, (H + 2·Hkv)·d] (each row: H query heads, Hkv key
/// heads, Hkv value heads), then the key and value caches [rows, Hkv·d] (states, f32 or f16).
/// Output: the rotated queries [T, H, d]. Token t sits at position start + t, `start` read from
/// runtime slot `slot`: its rotated keys and its values become row start + t of the caches, in
/// place. Rotation as `Op::Rope`: pair i turns by position · theta^(-2i/d), pairs by `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RopeKvParams {
    /// Query heads H.
    pub heads: u32,
    /// Key/value heads Hkv.
    pub kv_heads: u32,
    pub mode: RopeMode,
    pub theta: f32,
    pub slot: u32,
}

impl RopeKvParams {
    /// The node inputs written in place: the key and value caches.
    pub const STATE_WRITES: &'static [usize] = &[1, 2];
}

impl Graph {
    /// Rotates the query and key heads of `qkv` [T, (H + 2·Hkv)·d], writes the rotated keys
    /// and the values into `k_cache` and `v_cache` [rows, Hkv·d] at the row held in runtime
    /// slot `p.slot` (in place, an f16 cache rounding them), and returns the rotated queries
    /// [T, H, d]. The caches are states (or writes into states); nodes added afterwards that
    /// read them see the new rows (`KvCache::attend_qkv` builds the whole step).
    pub fn rope_kv(&mut self, qkv: NodeId, k_cache: NodeId, v_cache: NodeId, p: RopeKvParams) -> Result<NodeId> {
        let name = "rope_kv";
        check_slot(p.slot)?;
        let shape = self.f32_input(name, qkv)?.shape.clone();
        let d = self.rope_kv_head_dim(&shape, &p)?;
        if !(p.theta.is_finite() && p.theta > 1.0) {
            return Err(shape_err(name, format!("theta must be a finite number > 1 (e.g. 10000), got {}", p.theta)));
        }
        let width = p.kv_heads as usize * d;
        for (what, cache) in [("key", k_cache), ("value", v_cache)] {
            self.check_cache(what, cache, qkv, shape[0], width)?;
        }
        let (kd, vd) = (self.nodes[k_cache.0].dtype, self.nodes[v_cache.0].dtype);
        if kd != vd {
            return Err(Error::DType {
                what: format!("{name}: the key and value caches (#{} and #{})", k_cache.0, v_cache.0),
                expected: "the same dtype for both".into(),
                got: format!("{kd} and {vd}"),
            });
        }
        if self.storage_root(k_cache) == self.storage_root(v_cache) {
            return Err(shape_err(name, "the key and value caches must be different states".into()));
        }
        let out = vec![shape[0], p.heads as usize, d];
        Ok(self.push(NodeKind::Op(Op::RopeKv(p)), vec![qkv, k_cache, v_cache], out, DType::F32))
    }

    /// The head size d of a qkv input [T, (H + 2·Hkv)·d], or why there is none.
    fn rope_kv_head_dim(&self, shape: &[usize], p: &RopeKvParams) -> Result<usize> {
        let heads = p.heads as usize + 2 * p.kv_heads as usize;
        let ok = shape.len() == 2 && p.heads > 0 && p.kv_heads > 0 && shape[1].is_multiple_of(heads);
        let d = if ok { shape[1] / heads } else { 0 };
        if d == 0 || d % 2 != 0 {
            return Err(shape_err(
                "rope_kv",
                format!(
                    "needs qkv [tokens, (heads + 2·kv_heads)·head_dim] with an even head_dim, got {shape:?} for {} query and {} KV heads",
                    p.heads, p.kv_heads
                ),
            ));
        }
        Ok(d)
    }

    /// Checks that `cache` is an f32 or f16 state [rows, width] with room for `t` rows, apart
    /// from `qkv`.
    fn check_cache(&self, what: &str, cache: NodeId, qkv: NodeId, t: usize, width: usize) -> Result<()> {
        let name = "rope_kv";
        let c = self.get(name, cache)?;
        if !matches!(c.dtype, DType::F32 | DType::F16) {
            return Err(Error::DType {
                what: format!("{name}: the {what} cache ({})", c.label()),
                expected: "f32 or f16".into(),
                got: c.dtype.to_string(),
            });
        }
        let root = self.storage_root(cache);
        if !matches!(self.nodes[root.0].kind, NodeKind::State { .. }) {
            return Err(shape_err(
                name,
                format!("the {what} cache must be a state node (or a write into one), not {}", c.label()),
            ));
        }
        if self.storage_root(qkv) == root {
            return Err(shape_err(name, format!("qkv must not be the {what} cache it is written into")));
        }
        if c.shape.len() != 2 || c.shape[1] != width || c.shape[0] < t {
            return Err(shape_err(
                name,
                format!("the {what} cache must be [rows >= {t}, kv_heads·head_dim = {width}], got {:?}", c.shape),
            ));
        }
        Ok(())
    }
}
