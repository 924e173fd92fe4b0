//! Builders for softmax, permute and attention: the fused kernels (`attention`,
//! `attention_decode`) and the composite of primitives they are tested against
//! (`attention_composite`: permute, matmul, softmax with scale and masks, matmul).
//!
//! Layout is token-major, as linear layers produce it: q [Lq, H, d], k and v [Lk, Hkv, d]
//! (Hkv dividing H: grouped-query attention maps query head h to KV head h / (H / Hkv)),
//! output [Lq, H, d].
//!
//! ```
//! use webformer::{AttentionOptions, DType, Graph};
//! let mut g = Graph::new();
//! let q = g.input("q", &[7, 6, 32], DType::F32).unwrap();   // 7 tokens, 6 heads of 32
//! let k = g.input("k", &[7, 2, 32], DType::F32).unwrap();   // 2 KV heads (GQA, 3 per group)
//! let v = g.input("v", &[7, 2, 32], DType::F32).unwrap();
//! let causal = AttentionOptions { causal: true, ..Default::default() };
//! let fused = g.attention(q, k, v, causal).unwrap();            // one kernel
//! let reference = g.attention_composite(q, k, v, causal).unwrap(); // permute, matmul, softmax...
//! assert_eq!(g.node(fused).shape, g.node(reference).shape);
//! ```

use super::{
    check_slot, shape_err, AttentionImpl, AttentionParams, Graph, KeyRange, NodeId, NodeKind, Op, Permute,
    SoftmaxParams,
};
use crate::error::{Error, Result};
use crate::tensor::DType;

/// Options of `Graph::softmax_with`.
#[derive(Clone, Copy, Debug)]
pub struct SoftmaxOptions {
    /// Multiplies the input first (default 1).
    pub scale: f32,
    /// Masks key j of row i (i counted along the second-to-last dimension) when j > i + offset.
    pub causal: bool,
    pub offset: u32,
    /// A per-key padding mask of shape [n] (u32 or f32): 0 masks the key.
    pub mask: Option<NodeId>,
}

impl Default for SoftmaxOptions {
    fn default() -> Self {
        Self { scale: 1.0, causal: false, offset: 0, mask: None }
    }
}

/// Largest head size the attention op takes (head sizes are multiples of 4): the decode
/// kernel keeps a query in workgroup memory and gives each of its 64 invocations at least one
/// vec4 column of the output.
pub const MAX_HEAD_DIM: usize = 256;
/// Most parts split-key decode attention divides the key range into.
pub const MAX_SPLITS: usize = 64;

/// Options of the attention builders.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionOptions {
    /// Decoder masking: the query at position p sees keys 0..=p.
    pub causal: bool,
    /// Multiplies q·k; `None` means 1/sqrt(d).
    pub scale: Option<f32>,
    /// A key padding mask of shape [Lk] (u32 or f32): 0 masks the key for every query.
    pub mask: Option<NodeId>,
    /// Where the queries sit among the keys: all of k (default) or a KV cache whose length
    /// comes from a runtime slot.
    pub keys: KeyRange,
    /// Which kernel (default: chosen by the lowering).
    pub imp: AttentionImpl,
}

/// The checked shapes of an attention node.
struct Dims {
    lq: usize,
    heads: usize,
    d: usize,
    lk: usize,
    kv_heads: usize,
}

impl Graph {
    /// Softmax over the last dimension (numerically stable, any row length).
    pub fn softmax(&mut self, x: NodeId) -> Result<NodeId> {
        self.softmax_with(x, SoftmaxOptions::default())
    }

    /// Softmax of `scale * x` over the last dimension with optional causal and padding masks.
    /// Masked entries are 0; a row with every key masked is all zeros.
    pub fn softmax_with(&mut self, x: NodeId, o: SoftmaxOptions) -> Result<NodeId> {
        let name = "softmax";
        let shape = self.f32_input(name, x)?.shape.clone();
        if shape.is_empty() {
            return Err(shape_err(name, "needs at least one dimension, got a scalar".into()));
        }
        if !o.scale.is_finite() {
            return Err(shape_err(name, format!("the scale must be finite, got {}", o.scale)));
        }
        let mut inputs = vec![x];
        if let Some(m) = o.mask {
            self.check_mask(name, m, shape[shape.len() - 1])?;
            inputs.push(m);
        }
        let op =
            Op::Softmax(SoftmaxParams { scale: o.scale, causal: o.causal, offset: o.offset, mask: o.mask.is_some() });
        Ok(self.push(NodeKind::Op(op), inputs, shape, DType::F32))
    }

    fn check_mask(&self, op: &str, mask: NodeId, keys: usize) -> Result<()> {
        let m = self.get(op, mask)?;
        if m.dtype != DType::U32 && m.dtype != DType::F32 {
            return Err(Error::DType {
                what: format!("{op}: mask #{} ({})", mask.0, m.label()),
                expected: "u32 or f32".into(),
                got: m.dtype.to_string(),
            });
        }
        if m.shape != [keys] {
            return Err(shape_err(
                op,
                format!("the padding mask must have one entry per key, shape [{keys}], got {:?}", m.shape),
            ));
        }
        Ok(())
    }

    /// Reorders dimensions: output dimension k is input dimension `perm[k]` (rank 1 to 4).
    /// `permute(x, &[1, 0, 2])` turns [L, H, d] into [H, L, d].
    pub fn permute(&mut self, x: NodeId, perm: &[usize]) -> Result<NodeId> {
        let name = "permute";
        let shape = self.f32_input(name, x)?.shape.clone();
        let rank = shape.len();
        if rank == 0 || rank > 4 {
            return Err(shape_err(name, format!("supports 1 to 4 dimensions, got {shape:?}")));
        }
        let mut seen = [false; 4];
        let valid = perm.len() == rank && perm.iter().all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(shape_err(
                name,
                format!("{perm:?} is not a permutation of the {rank} dimensions of {shape:?}"),
            ));
        }
        let mut p = [0u8; 4];
        for (k, &d) in perm.iter().enumerate() {
            p[k] = d as u8;
        }
        let out: Vec<usize> = perm.iter().map(|&d| shape[d]).collect();
        Ok(self.push(NodeKind::Op(Op::Layout(Permute { perm: p, rank: rank as u8 })), vec![x], out, DType::F32))
    }

    fn check_attention(
        &self,
        op: &str,
        q: NodeId,
        k: NodeId,
        v: NodeId,
        o: &AttentionOptions,
    ) -> Result<(AttentionParams, Dims)> {
        let sq = self.f32_input(op, q)?.shape.clone();
        let (nk, nv) = (self.get(op, k)?, self.get(op, v)?);
        // Keys and values: f32, or both f16 (a half-precision KV cache).
        if !matches!(nk.dtype, DType::F32 | DType::F16) || nv.dtype != nk.dtype {
            return Err(Error::DType {
                what: format!("{op}: k and v ({} and {})", nk.label(), nv.label()),
                expected: "both f32 or both f16".into(),
                got: format!("{} and {}", nk.dtype, nv.dtype),
            });
        }
        let (sk, sv) = (nk.shape.clone(), nv.shape.clone());
        if sq.len() != 3 || sk.len() != 3 {
            return Err(shape_err(op, format!("needs q [Lq, H, d] and k, v [Lk, Hkv, d], got q {sq:?} and k {sk:?}")));
        }
        if sv != sk {
            return Err(shape_err(
                op,
                format!("k and v must have the same shape [Lk, Hkv, d], got k {sk:?} and v {sv:?}"),
            ));
        }
        let dims = Dims { lq: sq[0], heads: sq[1], d: sq[2], lk: sk[0], kv_heads: sk[1] };
        if sk[2] != dims.d {
            return Err(shape_err(op, format!("q and k must have the same head size, got q {sq:?} and k {sk:?}")));
        }
        if !dims.d.is_multiple_of(4) || dims.d > MAX_HEAD_DIM {
            return Err(shape_err(
                op,
                format!("the head size must be a multiple of 4 and at most {MAX_HEAD_DIM}, got {} (q {sq:?})", dims.d),
            ));
        }
        if !dims.heads.is_multiple_of(dims.kv_heads) {
            return Err(shape_err(
                op,
                format!(
                    "the {} query heads must be a multiple of the {} KV heads (q {sq:?}, k {sk:?})",
                    dims.heads, dims.kv_heads
                ),
            ));
        }
        match o.keys {
            KeyRange::All if o.causal && dims.lk < dims.lq => {
                return Err(shape_err(op, format!("causal attention over all keys places the {} queries at the last positions, so it needs at least as many keys, got q {sq:?} and k {sk:?}", dims.lq)));
            }
            KeyRange::Runtime(slot) => {
                check_slot(slot)?;
                if dims.lq > dims.lk {
                    return Err(shape_err(
                        op,
                        format!(
                            "the {} queries cannot fit a KV cache of {} rows (q {sq:?}, k {sk:?})",
                            dims.lq, dims.lk
                        ),
                    ));
                }
            }
            _ => {}
        }
        let scale = o.scale.unwrap_or(1.0 / (dims.d as f32).sqrt());
        if !scale.is_finite() {
            return Err(shape_err(op, format!("the scale must be finite, got {scale}")));
        }
        if let Some(m) = o.mask {
            self.check_mask(op, m, dims.lk)?;
        }
        Ok((AttentionParams { causal: o.causal, scale, keys: o.keys, mask: o.mask.is_some(), imp: o.imp }, dims))
    }

    /// Fused attention, softmax(scale · q kᵀ + masks) v per head, in one kernel that never
    /// materialises the Lq×Lk scores (tiles of queries against streamed tiles of keys, with
    /// an online softmax). See `AttentionOptions` for masks and KV caches.
    pub fn attention(&mut self, q: NodeId, k: NodeId, v: NodeId, o: AttentionOptions) -> Result<NodeId> {
        let (params, _) = self.check_attention("attention", q, k, v, &o)?;
        let mut inputs = vec![q, k, v];
        inputs.extend(o.mask);
        let shape = self.nodes[q.0].shape.clone();
        Ok(self.push(NodeKind::Op(Op::Attention(params)), inputs, shape, DType::F32))
    }

    /// Attention for decoding: few queries (typically one token) against a long KV cache, with
    /// the key range split into parts computed by separate workgroups (so a long cache keeps
    /// the whole GPU busy) and merged in a second pass; the lowering picks the part count.
    /// Same semantics as `attention`.
    pub fn attention_decode(&mut self, q: NodeId, k: NodeId, v: NodeId, o: AttentionOptions) -> Result<NodeId> {
        self.attention(q, k, v, AttentionOptions { imp: AttentionImpl::SplitKeys(0), ..o })
    }

    /// `attention_decode` with the key range split into `splits` parts (1 to MAX_SPLITS).
    /// More parts keep more workgroups busy on a long cache (GPUs with many cores); a CPU
    /// adapter does best with few (see `KvCache::new`).
    pub fn attention_decode_split(
        &mut self,
        q: NodeId,
        k: NodeId,
        v: NodeId,
        o: AttentionOptions,
        splits: u32,
    ) -> Result<NodeId> {
        if splits == 0 || splits as usize > MAX_SPLITS {
            return Err(shape_err(
                "attention_decode",
                format!("the key range can be split into 1 to {MAX_SPLITS} parts, not {splits}"),
            ));
        }
        self.attention(q, k, v, AttentionOptions { imp: AttentionImpl::SplitKeys(splits), ..o })
    }

    /// The same attention built from primitives, the reference path the fused kernels must
    /// match: heads moved to the front (permute), scores = q kᵀ (batched matmul), softmax with
    /// scale and masks, probabilities · v, heads moved back. It materialises [H, Lq, Lk] scores.
    /// Grouped-query attention is handled by viewing the H query heads as Hkv groups of H/Hkv.
    /// Needs `KeyRange::All` (the composite has no runtime key count).
    pub fn attention_composite(&mut self, q: NodeId, k: NodeId, v: NodeId, o: AttentionOptions) -> Result<NodeId> {
        let op = "attention_composite";
        let (params, Dims { lq, heads, d, lk, kv_heads }) = self.check_attention(op, q, k, v, &o)?;
        if params.keys != KeyRange::All {
            return Err(shape_err(op, "needs KeyRange::All: the composite path has no runtime key count (use attention or attention_decode for KV caches)".into()));
        }
        let g = heads / kv_heads;
        let q4 = self.reshape(q, &[lq, kv_heads, g, d])?;
        let qh = self.permute(q4, &[1, 2, 0, 3])?; // [Hkv, g, Lq, d]
        let qh = self.reshape(qh, &[kv_heads, g * lq, d])?;
        let kh = self.permute(k, &[1, 0, 2])?; // [Hkv, Lk, d]
        let vh = self.permute(v, &[1, 0, 2])?;
        let s = self.matmul_t(qh, kh)?; // [Hkv, g·Lq, Lk]
        let s = self.reshape(s, &[heads, lq, lk])?;
        let offset = u32::try_from(lk.saturating_sub(lq))
            .map_err(|_| shape_err(op, format!("{lk} keys do not fit 32-bit indexing")))?;
        let pr =
            self.softmax_with(s, SoftmaxOptions { scale: params.scale, causal: params.causal, offset, mask: o.mask })?;
        let pr = self.reshape(pr, &[kv_heads, g * lq, lk])?;
        let out = self.matmul(pr, vh)?; // [Hkv, g·Lq, d]
        let out = self.reshape(out, &[kv_heads, g, lq, d])?;
        let out = self.permute(out, &[2, 0, 1, 3])?; // [Lq, Hkv, g, d]
        self.reshape(out, &[lq, heads, d])
    }
}
