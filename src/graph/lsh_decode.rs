//! Reformer's cached decoding step as graph ops (kernel family `lsh_decode`): one new token
//! attends over per-layer caches, as Hugging Face's `LSHSelfAttention` and
//! `LocalSelfAttention` do when given `past_buckets_states`.
//!
//! Caches (states, one row per position, the row of the new token at the position in runtime
//! slot `slot`, written by `Graph::write_rows` before the attention reads it):
//! - LSH layers: the shared query-key vectors qk and the values [rows, H·d], and the offset
//!   buckets [rows, H·R] (f32 holding integers, exact below 2^24; column h·R + r).
//! - Local layers: the keys and values [rows, H·d].
//!
//! What HF computes for one cached LSH step, L = n + 1 positions (n cached, the new one last):
//! 1. The new query's bucket per round, with round offsets r·nb, or r·(nb + 1) when any cached
//!    bucket exceeds R·nb - 1 (HF's `increase_num_buckets`: the prompt was padded and hashed,
//!    so its buckets carry the padding bucket's offsets). `lsh_decode_hash`.
//! 2. Per (head, round): the stable argsort of the L buckets (key bucket·L + position), the
//!    sorted index s of the new position, and the window of sorted indices
//!    (s / C - before)·C + k for k in 0..C·(1 + before + after), each taken mod L: it wraps
//!    within the round's L sorted positions (HF's `_expand_to_indices_in_relevant_chunk`),
//!    not across rounds as the uncached forward does; a window longer than L holds positions
//!    more than once, and each copy counts.
//! 3. Scores q·k_j with q the new raw qk, k_j = qk_j / sqrt(mean(qk_j²) + 1e-6) / sqrt(d); the
//!    new position's own copies get -1e5; no causal or padding mask (every key is in the past).
//!    Softmax over the window, output and log-sum-exp per round; rounds combined with weights
//!    exp(lse_r - logsumexp_r lse_r). `lsh_decode_attend`.
//! 4. While no buckets are cached (a prompt too short to hash, until the cache holds a
//!    chunk), HF attends densely to all L positions with the same self mask; `dense_until`
//!    names those steps.
//!
//! Local layers (`local_decode`): keys and values of positions start.. of the cache, start =
//! (n / C - before)·C taken as a Python slice start (a negative one counts from the end), plus
//! the new one; scores q·k/sqrt(d), no mask, no chunks after.

use serde::Serialize;

use super::{check_slot, shape_err, Buckets, Graph, NodeId, NodeKind, Op, LSH_MAX_HEAD_DIM, LSH_MAX_ROUNDS};
use crate::error::Result;
use crate::tensor::DType;

/// Most window positions one decode step attends to (C·(1 + before + after) for LSH layers,
/// C·(1 + before) for local ones): the kernels keep the window in workgroup memory.
pub const DECODE_MAX_WINDOW: usize = 1024;

/// The ops of the `lsh_decode` family (see each builder).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum LshDecodeOp {
    /// Offset buckets of rows of qk: `lsh_decode_hash`.
    Hash(DecodeHash),
    /// The new token's LSH attention over the caches: `lsh_decode_attend`.
    Attend(DecodeAttend),
    /// The new token's local attention over the caches: `local_decode`.
    Local(DecodeLocal),
}

impl LshDecodeOp {
    /// The op's name in dumps and timing tables.
    pub fn name(&self) -> &'static str {
        match self {
            LshDecodeOp::Hash(_) => "lsh_decode_hash",
            LshDecodeOp::Attend(_) => "lsh_decode_attend",
            LshDecodeOp::Local(_) => "local_decode",
        }
    }
}

/// Parameters of `Graph::lsh_decode_hash`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DecodeHash {
    /// Heads H (qk's columns are H·d).
    pub heads: u32,
    /// Hashing rounds R.
    pub rounds: u32,
    /// Bucket counts per round (HF's num_buckets).
    pub buckets: Buckets,
    /// Round offset stride: `Some(s)` uses s; `None` decides it as HF's cached step does, from
    /// the bucket cache (an input then): count + 1 when a cached bucket of the positions before
    /// runtime slot `slot` exceeds rounds·count - 1, else count.
    pub stride: Option<u32>,
    /// Runtime slot holding n (the new row's position; read with `stride` None only).
    pub slot: u32,
}

/// Parameters of `Graph::lsh_decode_attend`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DecodeAttend {
    /// Heads H.
    pub heads: u32,
    /// Hashing rounds R.
    pub rounds: u32,
    /// Buckets per round (nb): the caches' round-r values lie in r·nb .. r·nb + nb + r.
    pub count: u32,
    /// Chunk length C, chunks of the window before and after the query's.
    pub chunk: u32,
    pub before: u32,
    pub after: u32,
    /// Steps with L <= dense_until attend densely (no buckets cached yet); 0: none.
    pub dense_until: u32,
    /// Runtime slot holding n, the new token's position.
    pub slot: u32,
}

/// Parameters of `Graph::local_decode`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DecodeLocal {
    /// Heads H.
    pub heads: u32,
    /// Chunk length C and chunks seen before [local_attn_chunk_length, local_num_chunks_before].
    pub chunk: u32,
    pub before: u32,
    /// Runtime slot holding n, the new token's position.
    pub slot: u32,
}

/// Options of `Graph::lsh_decode_attend` (HF's config fields in brackets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Heads H.
    pub heads: usize,
    /// [num_hashes]
    pub rounds: usize,
    /// [num_buckets]
    pub buckets: Buckets,
    /// [lsh_attn_chunk_length], [lsh_num_chunks_before], [lsh_num_chunks_after]
    pub chunk: usize,
    pub before: usize,
    pub after: usize,
    /// Steps with at most this many positions (cached + new) attend densely: HF's steps
    /// before any bucket is cached. 0 when the prompt was hashed.
    pub dense_until: usize,
    /// Runtime slot holding n, the new token's position.
    pub slot: u32,
}

fn small(op: &str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| shape_err(op, format!("{what} {v} exceeds 32 bits")))
}

impl Graph {
    /// An f32 [rows, cols] node's shape, or why not.
    fn decode_matrix(&self, op: &str, x: NodeId, what: &str, cols: usize) -> Result<usize> {
        let s = &self.f32_input(op, x)?.shape;
        if s.len() != 2 || s[1] != cols {
            return Err(shape_err(op, format!("{what} must be f32 [rows, {cols}], got {s:?}")));
        }
        Ok(s[0])
    }

    fn decode_heads(&self, op: &str, x: NodeId, heads: usize) -> Result<usize> {
        let s = &self.f32_input(op, x)?.shape;
        let d = if s.len() == 2 && heads > 0 && s[1].is_multiple_of(heads) { s[1] / heads } else { 0 };
        if d == 0 || !d.is_multiple_of(4) || d > LSH_MAX_HEAD_DIM {
            return Err(shape_err(
                op,
                format!(
                    "{heads} heads need rows [T, heads·d] with d a multiple of 4 up to {LSH_MAX_HEAD_DIM}, got {s:?}"
                ),
            ));
        }
        Ok(d)
    }

    /// Offset buckets of qk rows: qk [T, H·d], rotations [H, d, R, S] (as `lsh_hash`) -> f32
    /// [T, H·R], column h·R + r holding bucket(h, r, t) + r·stride (bucket as `lsh_hash`). With
    /// `stride` None (one row, a decode step) the stride is HF's cached-step choice, read from
    /// `cache` [rows, H·R] (the bucket cache, positions before runtime slot `slot`).
    pub fn lsh_decode_hash(
        &mut self,
        qk: NodeId,
        rotations: NodeId,
        cache: Option<NodeId>,
        p: DecodeHash,
    ) -> Result<NodeId> {
        let op = "lsh_decode_hash";
        check_slot(p.slot)?;
        let (h, r) = (p.heads as usize, p.rounds as usize);
        let d = self.decode_heads(op, qk, h)?;
        let t = self.get(op, qk)?.shape[0];
        let rs = self.f32_input(op, rotations)?.shape.clone();
        if rs != [h, d, r, p.buckets.rotation_half()] || r == 0 || r > LSH_MAX_ROUNDS {
            return Err(shape_err(
                op,
                format!(
                    "rotations must be [{h}, {d}, rounds (1..={LSH_MAX_ROUNDS}), {}], got {rs:?}",
                    p.buckets.rotation_half()
                ),
            ));
        }
        if (r as u64) * (p.buckets.count() as u64 + 1) >= 1 << 24 {
            return Err(shape_err(
                op,
                format!("{r} rounds of {} buckets exceed f32's exact integers", p.buckets.count()),
            ));
        }
        let mut inputs = vec![qk, rotations];
        match (p.stride, cache) {
            (None, Some(c)) if t == 1 => {
                self.decode_matrix(op, c, "the bucket cache", h * r)?;
                inputs.push(c);
            }
            (Some(s), None) if s >= p.buckets.count() => {}
            _ => {
                return Err(shape_err(
                    op,
                    "needs a fixed stride >= the bucket count and no cache, or one row with the bucket cache".into(),
                ))
            }
        }
        let kind = NodeKind::Op(Op::LshDecode(LshDecodeOp::Hash(p)));
        Ok(self.push(kind, inputs, vec![t, h * r], DType::F32))
    }

    /// The new token's LSH attention (module docs, steps 2-4): qk and v caches [rows, H·d] and
    /// the bucket cache [rows, H·R], each holding positions 0..=n (n in runtime slot
    /// `o.slot`; the new token's row already written) -> [1, H·d].
    pub fn lsh_decode_attend(&mut self, qk: NodeId, v: NodeId, buckets: NodeId, o: DecodeOptions) -> Result<NodeId> {
        let op = "lsh_decode_attend";
        check_slot(o.slot)?;
        let d = self.decode_heads(op, qk, o.heads)?;
        let rows = self.decode_matrix(op, qk, "qk", o.heads * d)?;
        if self.decode_matrix(op, v, "v", o.heads * d)? != rows
            || self.decode_matrix(op, buckets, "the bucket cache", o.heads * o.rounds)? != rows
        {
            return Err(shape_err(op, format!("qk, v and the bucket cache must all have {rows} rows")));
        }
        let window = o.chunk * (1 + o.before + o.after);
        if o.chunk == 0 || window > DECODE_MAX_WINDOW || o.rounds == 0 || o.rounds > LSH_MAX_ROUNDS {
            return Err(shape_err(
                op,
                format!(
                    "needs a window of 1..={DECODE_MAX_WINDOW} positions and 1..={LSH_MAX_ROUNDS} rounds, got chunk {} x {} and {} rounds",
                    o.chunk,
                    1 + o.before + o.after,
                    o.rounds
                ),
            ));
        }
        let count = o.buckets.count() as u64;
        if (count + o.rounds as u64) * rows as u64 > u32::MAX as u64 {
            return Err(shape_err(op, format!("{count} buckets over {rows} positions exceed 32-bit sort keys")));
        }
        let p = DecodeAttend {
            heads: small(op, "heads", o.heads)?,
            rounds: o.rounds as u32,
            count: o.buckets.count(),
            chunk: o.chunk as u32,
            before: small(op, "before", o.before)?,
            after: small(op, "after", o.after)?,
            dense_until: small(op, "dense_until", o.dense_until)?,
            slot: o.slot,
        };
        let kind = NodeKind::Op(Op::LshDecode(LshDecodeOp::Attend(p)));
        Ok(self.push(kind, vec![qk, v, buckets], vec![1, o.heads * d], DType::F32))
    }

    /// The new token's local attention: q [1, H·d] and the key and value caches [rows, H·d]
    /// holding positions 0..=n (n in runtime slot `slot`) -> [1, H·d] (module docs).
    pub fn local_decode(&mut self, q: NodeId, k: NodeId, v: NodeId, p: DecodeLocal) -> Result<NodeId> {
        let op = "local_decode";
        check_slot(p.slot)?;
        let h = p.heads as usize;
        let d = self.decode_heads(op, q, h)?;
        if self.decode_matrix(op, q, "q", h * d)? != 1 {
            return Err(shape_err(op, "q must be one row".into()));
        }
        let rows = self.decode_matrix(op, k, "k", h * d)?;
        if self.decode_matrix(op, v, "v", h * d)? != rows {
            return Err(shape_err(op, format!("k and v must both have {rows} rows")));
        }
        let window = p.chunk as usize * (1 + p.before as usize);
        if p.chunk == 0 || window > DECODE_MAX_WINDOW {
            return Err(shape_err(op, format!("needs a window of 1..={DECODE_MAX_WINDOW} positions, got {window}")));
        }
        let kind = NodeKind::Op(Op::LshDecode(LshDecodeOp::Local(p)));
        Ok(self.push(kind, vec![q, k, v], vec![1, h * d], DType::F32))
    }
}
