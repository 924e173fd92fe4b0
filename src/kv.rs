//! KV caches for decoding: per layer, a K and a V state of [max_ctx, Hkv·d] f32 rows,
//! allocated once by the executor (graph state, pinned) and written in place. The position of
//! the step's first new token lives in one runtime slot, read both by the row writes and by the
//! attention over the cache, so a single plan is replayed for every step; only that slot and
//! the inputs change. A prompt plan (many new tokens per run, the tiled prefill kernel) and a
//! decoding plan (one token per run, the split-key decode kernel) share one cache by building
//! the executors of both with one `SharedBuffers` (`GpuExecutor::with_shared`). A decoder
//! whose Q, K and V come from one projection uses `attend_qkv` instead of `attend`: the RoPE
//! of q and k and both row writes are then one kernel (`Graph::rope_kv`).
//!
//! ```no_run
//! # async fn demo(ctx: &webformer::Context) -> webformer::Result<()> {
//! use webformer::{DType, GpuExecutor, Graph, KvCache, KvCacheConfig};
//! let mut cache = KvCache::new(ctx, KvCacheConfig { layers: 1, max_ctx: 2048, kv_heads: 3, head_dim: 64, slot: 0 })?;
//! let mut g = Graph::new();
//! let q = g.input("q", &[1, 9, 64], DType::F32)?;      // one new token, 9 query heads
//! let k = g.input("k", &[1, 3, 64], DType::F32)?;      // its key and value, 3 KV heads
//! let v = g.input("v", &[1, 3, 64], DType::F32)?;
//! let y = cache.attend(&mut g, 0, q, k, v, true)?;       // append, then causal attention
//! g.output(y)?;
//! let mut exe = GpuExecutor::new(ctx, &g)?;
//! # let (qs, ks, vs) = (vec![0f32; 576], vec![0f32; 192], vec![0f32; 192]);
//! for _token in 0..16 {
//!     exe.set_input("q", &qs)?;
//!     exe.set_input("k", &ks)?;
//!     exe.set_input("v", &vs)?;
//!     cache.step(&mut exe, 1)?;                          // position = cache.len(), run, len += 1
//!     let _out = exe.read(y).await?;
//! }
//! cache.reset(&mut exe)?;                                // a new conversation
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::RUNTIME_SLOTS;
use crate::graph::{AttentionOptions, Graph, KeyRange, NodeId, RopeKvParams, RopeMode};
use crate::kernels::attention::{decode_splits, MAX_SPLITS};
use crate::tensor::DType;

/// Queries up to which `KvCache::attend` uses the split-key decode kernel; longer chunks (a
/// prompt) use the tiled prefill kernel.
pub const DECODE_MAX_QUERIES: usize = 4;

/// The shape of a model's KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvCacheConfig {
    /// Transformer layers (one K and one V state each).
    pub layers: usize,
    /// Positions the cache holds: prompt plus generated tokens.
    pub max_ctx: usize,
    /// Key/value heads (Hkv; fewer than the query heads with grouped-query attention).
    pub kv_heads: usize,
    /// Head size d.
    pub head_dim: usize,
    /// Runtime slot holding the position of the step's first new token.
    pub slot: u32,
}

/// How `KvCache::attend_qkv` rotates queries and keys (as `Graph::rope` does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotary {
    /// Which elements pair up.
    pub mode: RopeMode,
    /// The base of the angles (pair i turns by position · theta^(-2i/d)).
    pub theta: f32,
}

/// A preallocated KV cache: its configuration and how many positions are filled.
#[derive(Clone, Debug)]
pub struct KvCache {
    config: KvCacheConfig,
    len: usize,
    splits: u32,
    dtype: DType,
}

/// Largest buffer one K or V state may be: a storage binding must cover it whole.
fn state_limit(limits: &wgpu::Limits) -> u64 {
    limits.max_storage_buffer_binding_size.min(limits.max_buffer_size)
}

impl KvCache {
    /// Checks that one layer's K (or V) state fits a storage binding on `ctx`'s device, and
    /// picks how many parts decode attention splits the cache into: one per 256 positions
    /// (at most 64) on GPUs, where every part is a workgroup and a long cache needs many to
    /// fill the device; one on CPU adapters (lavapipe, SwiftShader), where the heads already
    /// give every core work and each extra workgroup only costs.
    pub fn new(ctx: &Context, config: KvCacheConfig) -> Result<Self> {
        let mut cache = Self::with_limits(ctx.limits(), config)?;
        if ctx.adapter().device_type == "Cpu" {
            cache.splits = 1;
        }
        Ok(cache)
    }

    /// As `new`, against given limits (e.g. WebGPU's defaults, to plan for any browser).
    pub fn with_limits(limits: &wgpu::Limits, config: KvCacheConfig) -> Result<Self> {
        let c = config;
        if c.layers == 0 || c.max_ctx == 0 || c.kv_heads == 0 || c.head_dim == 0 {
            return Err(Error::Usage(format!(
                "a KV cache needs at least one layer, position, head and head dimension, got {c:?}"
            )));
        }
        if c.slot as usize >= RUNTIME_SLOTS {
            return Err(Error::RuntimeSlot { slot: c.slot as usize, max: RUNTIME_SLOTS });
        }
        let needed = DType::F32.bytes_for(c.max_ctx * c.kv_heads * c.head_dim) as u64;
        let max = state_limit(limits);
        let fit = Self::max_ctx_for(limits, c.kv_heads, c.head_dim);
        if needed > max || c.max_ctx > u32::MAX as usize {
            return Err(Error::Limit {
                what: format!(
                    "a KV cache of {} positions x {} KV heads x {} (one layer's K or V, f32; at most {fit} positions fit)",
                    c.max_ctx, c.kv_heads, c.head_dim
                ),
                needed,
                max,
                limit: "max_storage_buffer_binding_size",
            });
        }
        Ok(Self { config, len: 0, splits: decode_splits(c.max_ctx), dtype: DType::F32 })
    }

    /// The most positions a cache of `kv_heads` x `head_dim` can hold under `limits`.
    pub fn max_ctx_for(limits: &wgpu::Limits, kv_heads: usize, head_dim: usize) -> usize {
        let row = DType::F32.bytes_for(kv_heads.max(1) * head_dim.max(1)) as u64;
        (state_limit(limits) / row).min(u32::MAX as u64) as usize
    }

    pub fn config(&self) -> &KvCacheConfig {
        &self.config
    }

    /// Stores keys and values in `dtype`: F32 (the default) or F16, half the memory and the
    /// bandwidth of decode attention, with keys and values rounded to f16 as they are written
    /// (scores and softmax stay f32). F16 needs the adapter's SHADER_F16 feature, checked when
    /// an executor is built. Applies to graphs built afterwards. `new` checked the size for f32,
    /// so an f16 cache always fits (it could hold twice the positions; ask `new` for those).
    pub fn with_dtype(mut self, dtype: DType) -> Result<Self> {
        if !matches!(dtype, DType::F32 | DType::F16) {
            return Err(Error::Usage(format!("a KV cache stores f32 or f16, not {dtype}")));
        }
        self.dtype = dtype;
        Ok(self)
    }

    /// The element type of the stored keys and values.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Parts the decode kernel splits the cache's key range into.
    pub fn decode_splits(&self) -> u32 {
        self.splits
    }

    /// Overrides the number of parts (1 to 64), e.g. to measure the split's effect. Applies to
    /// graphs built afterwards.
    pub fn set_decode_splits(&mut self, splits: u32) -> Result<()> {
        if splits == 0 || splits as usize > MAX_SPLITS {
            return Err(Error::Usage(format!(
                "decode attention splits the cache into 1 to {MAX_SPLITS} parts, not {splits}"
            )));
        }
        self.splits = splits;
        Ok(())
    }

    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions still free.
    pub fn remaining(&self) -> usize {
        self.config.max_ctx - self.len
    }

    /// GPU bytes of the whole cache (every layer, K and V).
    pub fn bytes(&self) -> u64 {
        let c = &self.config;
        2 * c.layers as u64 * self.dtype.bytes_for(c.max_ctx * c.kv_heads * c.head_dim) as u64
    }

    /// Names of layer `layer`'s K and V states in the graph.
    pub fn state_names(&self, layer: usize) -> (String, String) {
        (format!("kv{layer}.k"), format!("kv{layer}.v"))
    }

    /// Adds layer `layer`'s K and V states to `g`, writes the step's new keys and values
    /// ([T, Hkv, d] or [T, Hkv·d]) into them at the position in the slot, and returns the
    /// updated caches viewed as [max_ctx, Hkv, d], ready for attention with
    /// `KeyRange::Runtime(slot)`.
    pub fn append(&self, g: &mut Graph, layer: usize, k_new: NodeId, v_new: NodeId) -> Result<(NodeId, NodeId)> {
        let c = self.config;
        self.check_layer(layer)?;
        let width = c.kv_heads * c.head_dim;
        let (kn, vn) = self.state_names(layer);
        let mut out = Vec::new();
        for (name, x) in [(kn, k_new), (vn, v_new)] {
            let shape = g.node(x).shape.clone();
            if shape.len() < 2 || shape[1..].iter().product::<usize>() != width {
                return Err(Error::Shape {
                    op: "kv cache append".into(),
                    detail: format!(
                        "new keys/values must be [T, {}, {}] or [T, {width}], got {shape:?}",
                        c.kv_heads, c.head_dim
                    ),
                });
            }
            let rows = g.reshape(x, &[shape[0], width])?;
            let state = g.state(&name, &[c.max_ctx, width], self.dtype)?;
            let written = g.write_rows(state, rows, c.slot)?;
            out.push(g.reshape(written, &[c.max_ctx, c.kv_heads, c.head_dim])?);
        }
        Ok((out[0], out[1]))
    }

    fn check_layer(&self, layer: usize) -> Result<()> {
        if layer >= self.config.layers {
            return Err(Error::Usage(format!(
                "KV cache layer {layer} does not exist; the cache has {} layers",
                self.config.layers
            )));
        }
        Ok(())
    }

    /// The attention over layer `layer`'s caches k and v [max_ctx, Hkv, d], as `attend` and
    /// `attend_qkv` build it.
    fn attention(&self, g: &mut Graph, q: NodeId, k: NodeId, v: NodeId, causal: bool) -> Result<NodeId> {
        let o = AttentionOptions { causal, keys: KeyRange::Runtime(self.config.slot), ..Default::default() };
        if g.node(q).shape.first().is_some_and(|&t| t <= DECODE_MAX_QUERIES) {
            g.attention_decode_split(q, k, v, o, self.splits)
        } else {
            g.attention(q, k, v, o)
        }
    }

    /// The step's fused projection `qkv` [T, (H + 2·Hkv)·d] (each token's `heads` query heads,
    /// then its key heads and value heads, as one linear layer over stacked Q, K and V weights
    /// gives them): one `rope_kv` kernel rotates q and k and writes k and v into layer `layer`
    /// at the slot's position, then the rotated queries [T, H, d] attend over the cache as in
    /// `attend`.
    pub fn attend_qkv(
        &self,
        g: &mut Graph,
        layer: usize,
        qkv: NodeId,
        heads: usize,
        rope: Rotary,
        causal: bool,
    ) -> Result<NodeId> {
        let c = self.config;
        self.check_layer(layer)?;
        let width = c.kv_heads * c.head_dim;
        let (kn, vn) = self.state_names(layer);
        let k_state = g.state(&kn, &[c.max_ctx, width], self.dtype)?;
        let v_state = g.state(&vn, &[c.max_ctx, width], self.dtype)?;
        let as_u32 =
            |n: usize, what: &str| u32::try_from(n).map_err(|_| Error::Usage(format!("{n} {what} exceed 32 bits")));
        let p = RopeKvParams {
            heads: as_u32(heads, "query heads")?,
            kv_heads: as_u32(c.kv_heads, "KV heads")?,
            mode: rope.mode,
            theta: rope.theta,
            slot: c.slot,
        };
        // rope_kv checks that qkv's heads have the cache's size (its rows are Hkv·d wide).
        let q = g.rope_kv(qkv, k_state, v_state, p)?;
        // Added after the rope_kv node, so they read the caches with the step's rows in.
        let k = g.reshape(k_state, &[c.max_ctx, c.kv_heads, c.head_dim])?;
        let v = g.reshape(v_state, &[c.max_ctx, c.kv_heads, c.head_dim])?;
        self.attention(g, q, k, v, causal)
    }

    /// Appends the step's keys and values to layer `layer` and attends `q` [T, H, d] over the
    /// cache (keys 0..position + T): the split-key decode kernel for up to DECODE_MAX_QUERIES
    /// new tokens, the tiled prefill kernel for longer chunks (a prompt).
    pub fn attend(
        &self,
        g: &mut Graph,
        layer: usize,
        q: NodeId,
        k_new: NodeId,
        v_new: NodeId,
        causal: bool,
    ) -> Result<NodeId> {
        let (k, v) = self.append(g, layer, k_new, v_new)?;
        self.attention(g, q, k, v, causal)
    }

    /// Sets the position slot for a run that appends `new_tokens`, or says why they do not fit.
    pub fn set_position(&self, exe: &mut GpuExecutor, new_tokens: usize) -> Result<()> {
        if new_tokens > self.remaining() {
            return Err(Error::Usage(format!(
                "the KV cache holds {} of {} positions; {new_tokens} more do not fit (reset or truncate it, or build it with a larger max_ctx)",
                self.len, self.config.max_ctx
            )));
        }
        exe.set_runtime_u32(self.config.slot, self.len as u32)
    }

    /// One step: sets the position, runs the plan (inputs already set) and counts the
    /// `new_tokens` the plan appended.
    pub fn step(&mut self, exe: &mut GpuExecutor, new_tokens: usize) -> Result<()> {
        self.set_position(exe, new_tokens)?;
        exe.run()?;
        self.len += new_tokens;
        Ok(())
    }

    /// Empties the cache: zeroes every layer's states in `exe` and sets the length to 0.
    pub fn reset(&mut self, exe: &mut GpuExecutor) -> Result<()> {
        for layer in 0..self.config.layers {
            let (k, v) = self.state_names(layer);
            exe.clear_state(&k)?;
            exe.clear_state(&v)?;
        }
        self.len = 0;
        Ok(())
    }

    /// Keeps the first `len` positions (e.g. to regenerate from an earlier point, or to drop a
    /// rejected speculative draft). The rows after them are no longer read (attention only
    /// sees keys below the position) and are overwritten by the next appends.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.len {
            return Err(Error::Usage(format!(
                "cannot truncate a KV cache of {} positions to {len}: truncation only shortens",
                self.len
            )));
        }
        self.len = len;
        Ok(())
    }
}
