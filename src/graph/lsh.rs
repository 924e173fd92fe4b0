//! Reformer attention as graph ops (kernel family `lsh`): LSH hashing, chunked attention over
//! the hash-sorted order, the un-sort and combination of hashing rounds, and local (chunked)
//! attention. The composite `Graph::lsh_attention` chains hash -> argsort -> chunk attention ->
//! inverse permutation -> combine, exactly as Hugging Face's `LSHSelfAttention` computes it.
//!
//! Layout: head-major, `[B, L, d]` with B = heads (times batch), L tokens, d the head size. A
//! padding mask `[L]` (u32 or f32, 0 hides the token) is shared by the B rows.

use serde::Serialize;

use super::{shape_err, Graph, NodeId, NodeKind, Op};
use crate::error::Result;
use crate::tensor::DType;

/// Most factors of a factorised bucket count (HF takes any list; real checkpoints use 1 or 2).
pub const MAX_BUCKET_FACTORS: usize = 4;
/// Largest head size the `lsh` kernels take (they keep one query row and its output
/// accumulator in registers).
pub const LSH_MAX_HEAD_DIM: usize = 128;
/// Most hashing rounds (the combine kernel keeps one weight per round in registers).
pub const MAX_ROUNDS: usize = 16;
/// Score of a masked key (padding, causal): HF's `mask_value_float32`, by replacement.
pub const MASK_VALUE: f32 = -1e9;
/// Score of a query against its own token: HF's `self_mask_value_float32`, by replacement.
pub const SELF_MASK_VALUE: f32 = -1e5;

/// Bucket counts of one hashing round: a single even count, or HF's factorised list (each
/// factor even; the bucket is the mixed-radix number of the per-factor argmaxes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Buckets {
    /// The factors; entries past `len` are unused (0).
    pub factors: [u32; MAX_BUCKET_FACTORS],
    pub len: u8,
}

impl Buckets {
    /// From HF's `num_buckets` (an int is one factor). Each factor must be even and >= 2.
    pub fn new(factors: &[usize]) -> Result<Self> {
        let bad = || {
            shape_err(
                "lsh_hash",
                format!("num_buckets must be 1 to {MAX_BUCKET_FACTORS} even counts >= 2, got {factors:?}"),
            )
        };
        if factors.is_empty()
            || factors.len() > MAX_BUCKET_FACTORS
            || factors.iter().any(|&f| f < 2 || !f.is_multiple_of(2))
        {
            return Err(bad());
        }
        let mut f = [0u32; MAX_BUCKET_FACTORS];
        for (i, &x) in factors.iter().enumerate() {
            f[i] = u32::try_from(x).map_err(|_| bad())?;
        }
        let b = Self { factors: f, len: factors.len() as u8 };
        if b.count().checked_mul(2).is_none() {
            return Err(bad());
        }
        Ok(b)
    }

    /// The factors in use.
    pub fn list(&self) -> &[u32] {
        &self.factors[..self.len as usize]
    }

    /// Buckets per round: the product of the factors.
    pub fn count(&self) -> u32 {
        self.list().iter().product()
    }

    /// Columns of the random rotation: the sum of the factors, halved (HF's rotation_size / 2).
    pub fn rotation_half(&self) -> usize {
        self.list().iter().map(|&f| f as usize / 2).sum()
    }
}

/// The ops of the `lsh` family (see each builder for shapes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum LshOp {
    /// Offset bucket of every (round, token): `lsh_hash`.
    Hash { buckets: Buckets, mask: bool },
    /// Chunked shared-QK attention over the sorted order: `lsh_chunk_attention`.
    ChunkAttention { chunk: u32, before: u32, after: u32, causal: bool, mask: bool },
    /// Un-sort and combine rounds: `lsh_combine`.
    Combine { rounds: u32 },
    /// Local chunked attention: `local_attention`.
    Local { chunk: u32, before: u32, after: u32, causal: bool, mask: bool },
}

impl LshOp {
    /// The op's kernel name.
    pub fn name(&self) -> &'static str {
        match self {
            LshOp::Hash { .. } => "lsh_hash",
            LshOp::ChunkAttention { .. } => "lsh_chunk_attention",
            LshOp::Combine { .. } => "lsh_combine",
            LshOp::Local { .. } => "local_attention",
        }
    }
}

/// Options of `Graph::lsh_attention` (HF's config fields in brackets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LshOptions {
    /// Bucket counts per round [num_buckets].
    pub buckets: Buckets,
    /// Hashing rounds [num_hashes]; the rotations' third dimension.
    pub rounds: usize,
    /// Tokens per chunk [lsh_attn_chunk_length].
    pub chunk: usize,
    /// Chunks each chunk also attends to before and after it [lsh_num_chunks_before/after].
    pub before: usize,
    pub after: usize,
    /// Token i sees tokens <= i only [is_decoder].
    pub causal: bool,
    /// Padding mask [L] (u32 or f32; 0 hides the token). Padding tokens hash to an extra bucket.
    pub mask: Option<NodeId>,
}

/// Options of `Graph::local_attention` (HF's config fields in brackets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalOptions {
    /// Tokens per chunk [local_attn_chunk_length].
    pub chunk: usize,
    /// Chunks each chunk also attends to before and after it [local_num_chunks_before/after].
    pub before: usize,
    pub after: usize,
    /// [is_decoder].
    pub causal: bool,
    /// Padding mask [L] (u32 or f32; 0 hides the token).
    pub mask: Option<NodeId>,
}

fn u32_of(op: &str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| shape_err(op, format!("{what} {v} exceeds 32 bits")))
}

impl Graph {
    /// The shape of a head-major [B, L, d] f32 input, checked.
    fn lsh_rows(&self, op: &str, x: NodeId, what: &str) -> Result<[usize; 3]> {
        let s = &self.f32_input(op, x)?.shape;
        if s.len() != 3 || !s[2].is_multiple_of(4) || s[2] > LSH_MAX_HEAD_DIM {
            return Err(shape_err(
                op,
                format!("{what} must be [heads, tokens, head_size] with head_size a multiple of 4 up to {LSH_MAX_HEAD_DIM}, got {s:?}"),
            ));
        }
        Ok([s[0], s[1], s[2]])
    }

    fn lsh_mask(&self, op: &str, mask: Option<NodeId>, l: usize) -> Result<Vec<NodeId>> {
        let Some(m) = mask else { return Ok(Vec::new()) };
        let n = self.get(op, m)?;
        if !matches!(n.dtype, DType::U32 | DType::F32) || n.shape[..] != [l] {
            return Err(shape_err(op, format!("the mask must be u32 or f32 [{l}], got {} {:?}", n.dtype, n.shape)));
        }
        Ok(vec![m])
    }

    fn u32_matrix(&self, op: &str, x: NodeId, what: &str, want: [usize; 2]) -> Result<()> {
        let n = self.get(op, x)?;
        if n.dtype != DType::U32 || n.shape[..] != want {
            return Err(shape_err(op, format!("{what} must be u32 {want:?}, got {} {:?}", n.dtype, n.shape)));
        }
        Ok(())
    }

    /// LSH buckets: qk [B, L, d], rotations [B, d, R, S] (S = `buckets.rotation_half()`) ->
    /// u32 [B, R·L]. Element r·L + t is bucket(r, t) + r·nb, where bucket = argmax over
    /// [x·R_r, -x·R_r] (per factor, combined mixed-radix as HF does) and nb the bucket count,
    /// plus one extra bucket for padding tokens when a mask is given (then nb = count + 1).
    /// Sorting these values stably orders every round's tokens by bucket, rounds in order.
    pub fn lsh_hash(
        &mut self,
        qk: NodeId,
        rotations: NodeId,
        buckets: Buckets,
        mask: Option<NodeId>,
    ) -> Result<NodeId> {
        let op = "lsh_hash";
        let [b, l, d] = self.lsh_rows(op, qk, "qk")?;
        let rs = self.f32_input(op, rotations)?.shape.clone();
        if rs.len() != 4 || rs[0] != b || rs[1] != d || rs[3] != buckets.rotation_half() {
            return Err(shape_err(
                op,
                format!(
                    "rotations must be [{b}, {d}, rounds, {}] for qk {:?} and buckets {:?}, got {rs:?}",
                    buckets.rotation_half(),
                    [b, l, d],
                    buckets.list()
                ),
            ));
        }
        let rounds = rs[2];
        let nb = buckets.count() as u64 + 1;
        if (rounds as u64) * nb > u32::MAX as u64 || (rounds * l) as u64 > u32::MAX as u64 {
            return Err(shape_err(op, format!("{rounds} rounds of {nb} buckets over {l} tokens exceed 32-bit keys")));
        }
        let mut inputs = vec![qk, rotations];
        inputs.extend(self.lsh_mask(op, mask, l)?);
        let kind = NodeKind::Op(Op::Lsh(LshOp::Hash { buckets, mask: mask.is_some() }));
        Ok(self.push(kind, inputs, vec![b, rounds * l], DType::U32))
    }

    /// Chunked attention over a sorted order: qk, v [B, L, d]; perm u32 [B, N] (N = R·L, a
    /// multiple of `chunk`): sorted position s holds round-token index perm[s] = r·L + t.
    /// Sorted chunk c (of `chunk` positions) attends to the chunks c-before ..= c+after, taken
    /// circularly over all N/chunk chunks (so across rounds, as HF's look-adjacent does;
    /// repeated chunks count repeatedly). Query = qk[t], key = qk[t'] / sqrt(mean(qk[t']²) +
    /// 1e-6) / sqrt(d), value = v[t']. Scores of padding keys and (when causal) of keys after
    /// the query's token are replaced by -1e9, then the query's own token by -1e5.
    /// Output [B, N, d + 1]: the attention output of each sorted position, then its
    /// log-sum-exp of scores.
    pub fn lsh_chunk_attention(&mut self, qk: NodeId, v: NodeId, perm: NodeId, o: ChunkOptions) -> Result<NodeId> {
        let op = "lsh_chunk_attention";
        let [b, l, d] = self.lsh_rows(op, qk, "qk")?;
        if self.lsh_rows(op, v, "v")? != [b, l, d] {
            return Err(shape_err(op, format!("v must have qk's shape {:?}", [b, l, d])));
        }
        let n = self.get(op, perm)?.shape.get(1).copied().unwrap_or(0);
        self.u32_matrix(op, perm, "perm", [b, n])?;
        if !n.is_multiple_of(l) || o.chunk == 0 || !n.is_multiple_of(o.chunk) {
            return Err(shape_err(
                op,
                format!("perm's length {n} must be a multiple of the {l} tokens and of the chunk {}", o.chunk),
            ));
        }
        let mut inputs = vec![qk, v, perm];
        inputs.extend(self.lsh_mask(op, o.mask, l)?);
        let kind = NodeKind::Op(Op::Lsh(LshOp::ChunkAttention {
            chunk: u32_of(op, "chunk", o.chunk)?,
            before: u32_of(op, "before", o.before)?,
            after: u32_of(op, "after", o.after)?,
            causal: o.causal,
            mask: o.mask.is_some(),
        }));
        Ok(self.push(kind, inputs, vec![b, n, d + 1], DType::F32))
    }

    /// Un-sorts and combines rounds: attended [B, R·L, d + 1] (from `lsh_chunk_attention`),
    /// undo u32 [B, R·L] (the inverse of its perm: undo[r·L + t] is where (r, t) sits) ->
    /// [B, L, d] = Σ_r exp(lse_r - logsumexp_r lse_r) · out_r.
    pub fn lsh_combine(&mut self, attended: NodeId, undo: NodeId, rounds: usize) -> Result<NodeId> {
        let op = "lsh_combine";
        let s = self.f32_input(op, attended)?.shape.clone();
        if rounds > MAX_ROUNDS {
            return Err(shape_err(op, format!("{rounds} rounds exceed the most the kernels take, {MAX_ROUNDS}")));
        }
        if s.len() != 3 || s[2] < 2 || rounds == 0 || !s[1].is_multiple_of(rounds) {
            return Err(shape_err(
                op,
                format!("attended must be [B, rounds·L, d + 1] with {rounds} rounds, got {s:?}"),
            ));
        }
        self.u32_matrix(op, undo, "undo", [s[0], s[1]])?;
        let kind = NodeKind::Op(Op::Lsh(LshOp::Combine { rounds: u32_of(op, "rounds", rounds)? }));
        Ok(self.push(kind, vec![attended, undo], vec![s[0], s[1] / rounds, s[2] - 1], DType::F32))
    }

    /// Local attention as HF's `LocalSelfAttention`: q, k, v [B, L, d] -> [B, L, d]. Chunk c of
    /// `chunk` tokens attends to chunks c-before ..= c+after (circularly), scores q·k/sqrt(d);
    /// padding keys and (when causal) later tokens get -1e9 by replacement. When L <= chunk,
    /// every token attends to all L (HF's plain path); otherwise L must be a multiple of chunk.
    pub fn local_attention(&mut self, q: NodeId, k: NodeId, v: NodeId, o: LocalOptions) -> Result<NodeId> {
        let op = "local_attention";
        let dims = self.lsh_rows(op, q, "q")?;
        let [b, l, d] = dims;
        if self.lsh_rows(op, k, "k")? != dims || self.lsh_rows(op, v, "v")? != dims {
            return Err(shape_err(op, format!("k and v must have q's shape {dims:?}")));
        }
        let (chunk, before, after) = if l <= o.chunk { (l, 0, 0) } else { (o.chunk, o.before, o.after) };
        if o.chunk == 0 || !l.is_multiple_of(chunk) {
            return Err(shape_err(
                op,
                format!("{l} tokens must be at most one chunk or a multiple of the chunk {}", o.chunk),
            ));
        }
        let mut inputs = vec![q, k, v];
        inputs.extend(self.lsh_mask(op, o.mask, l)?);
        let kind = NodeKind::Op(Op::Lsh(LshOp::Local {
            chunk: u32_of(op, "chunk", chunk)?,
            before: u32_of(op, "before", before)?,
            after: u32_of(op, "after", after)?,
            causal: o.causal,
            mask: o.mask.is_some(),
        }));
        Ok(self.push(kind, inputs, vec![b, l, d], DType::F32))
    }

    /// HF's LSH self-attention: qk, v [B, L, d] (head-major), rotations [B, d, R, S] ->
    /// [B, L, d]. Hashes (`lsh_hash`), sorts each row's buckets stably (so rounds stay in
    /// order and ties keep token order: HF's key bucket·(R·L) + r·L + t), attends over the
    /// sorted chunks (`lsh_chunk_attention`), then un-sorts and combines the rounds
    /// (`lsh_combine`). Sequences of at most one chunk take HF's plain path instead
    /// (`lsh_plain_attention`; no hashing, the rotations unused). L must otherwise be a
    /// multiple of the chunk, as in HF.
    ///
    /// ```
    /// use webformer::graph::{Buckets, LshOptions};
    /// use webformer::{DType, Graph};
    /// let mut g = Graph::new();
    /// let qk = g.input("qk", &[2, 16, 8], DType::F32).unwrap();
    /// let v = g.input("v", &[2, 16, 8], DType::F32).unwrap();
    /// let rot = g.input("rot", &[2, 8, 2, 2], DType::F32).unwrap(); // 4 buckets, 2 rounds
    /// let o = LshOptions { buckets: Buckets::new(&[4]).unwrap(), rounds: 2, chunk: 4, before: 1, after: 0, causal: true, mask: None };
    /// let y = g.lsh_attention(qk, v, rot, o).unwrap();
    /// assert_eq!(g.node(y).shape, vec![2, 16, 8]);
    /// ```
    pub fn lsh_attention(&mut self, qk: NodeId, v: NodeId, rotations: NodeId, o: LshOptions) -> Result<NodeId> {
        let [_, l, _] = self.lsh_rows("lsh_attention", qk, "qk")?;
        if l <= o.chunk {
            return self.lsh_plain_attention(qk, v, o.causal, o.mask);
        }
        if self.get("lsh_attention", rotations)?.shape.get(2) != Some(&o.rounds) {
            return Err(shape_err(
                "lsh_attention",
                format!("the rotations must have {} rounds (dimension 2)", o.rounds),
            ));
        }
        let buckets = self.lsh_hash(qk, rotations, o.buckets, o.mask)?;
        let top = o.rounds as u64 * (o.buckets.count() as u64 + 1);
        let bits = (64 - (top - 1).leading_zeros()).max(1);
        let perm = self.argsort_bits(buckets, bits)?;
        let att = self.lsh_chunk_attention(qk, v, perm, o.into())?;
        let undo = self.inverse_permutation(perm)?;
        self.lsh_combine(att, undo, o.rounds)
    }

    /// The identity permutation [B, N] as a weight (HF's plain path: no hashing, no sort).
    fn lsh_identity(&mut self, b: usize, n: usize) -> Result<NodeId> {
        let data: Vec<u32> = (0..b).flat_map(|_| 0..n as u32).collect();
        let name = format!("lsh.identity.{b}x{n}");
        match self.inputs_or_weight(&name) {
            Some(id) => Ok(id),
            None => self.weight(&name, &[b, n], data),
        }
    }

    fn inputs_or_weight(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| matches!(&n.kind, NodeKind::Weight { name: m, .. } if m == name)).map(NodeId)
    }

    /// HF's plain (unhashed) path for sequences of at most one chunk: every token attends to
    /// all L with the LSH masks, as one chunk over the identity order.
    pub fn lsh_plain_attention(&mut self, qk: NodeId, v: NodeId, causal: bool, mask: Option<NodeId>) -> Result<NodeId> {
        let [b, l, _] = self.lsh_rows("lsh_attention", qk, "qk")?;
        let id = self.lsh_identity(b, l)?;
        let o = ChunkOptions { chunk: l, before: 0, after: 0, causal, mask };
        let att = self.lsh_chunk_attention(qk, v, id, o)?;
        self.lsh_combine(att, id, 1)
    }
}

/// Options of `Graph::lsh_chunk_attention`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkOptions {
    pub chunk: usize,
    pub before: usize,
    pub after: usize,
    pub causal: bool,
    pub mask: Option<NodeId>,
}

impl From<LshOptions> for ChunkOptions {
    fn from(o: LshOptions) -> Self {
        Self { chunk: o.chunk, before: o.before, after: o.after, causal: o.causal, mask: o.mask }
    }
}
