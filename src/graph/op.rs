//! The closed set of operations a graph can hold. An op's name is its kernel's entry point.

use serde::Serialize;

pub use super::lsh::LshOp;

/// A scalar argument fixed when the graph is built, or read from a runtime slot on every run
/// (e.g. a sampling temperature the caller changes between steps without rebuilding the plan).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Scalar {
    Const(f32),
    /// Index of a runtime slot; the value is an f32 set with `set_runtime_f32`.
    Runtime(u32),
}

/// Pointwise functions of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Activation {
    /// GELU with the exact erf (BERT, `gelu` in Hugging Face).
    GeluErf,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`; FNet, GPT-2).
    GeluTanh,
    /// x·sigmoid(x) (Llama's SwiGLU gate).
    Silu,
    Relu,
    /// tanh (the BERT and FNet poolers).
    Tanh,
}

/// Which matmul kernel to use. `Auto` lets the lowering pick by shape, dtype and adapter
/// features; the others force one kernel (benchmarks, tests, debugging).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub enum MatmulImpl {
    #[default]
    Auto,
    /// The one-thread-per-output baseline (f32 B only).
    Naive,
    /// The decode GEMV (a single row times a transposed weight) with its workgroup-memory
    /// tree reduction, even where the adapter has subgroups (`Auto` then reduces with
    /// subgroup operations). For tests and benchmarks of that portable path; a node that is
    /// not a single-row `x · wᵀ` fails to lower.
    GemvShared,
    /// The decode GEMV with the subgroup tree reduction, the GPU kernel, even on CPU adapters
    /// (where `Auto` picks the row-per-lane kernel of `kernels::gemv::lanes_fit`). For tests
    /// and benchmarks; needs SUBGROUP, and a single-row `x · wᵀ` like `GemvShared`.
    GemvSubgroup,
    /// The workgroup-tiled GEMM (`kernels::gemm`, f32 or f16 B).
    Tiled,
    /// The subgroup-broadcast GEMM (`kernels::gemm`, f32 or f16 B); needs SUBGROUP.
    Subgroup,
}

/// How rotary position embeddings pair the elements of one head of `d` elements. The two
/// conventions rotate the same pairs of weights once a checkpoint is converted: llama.cpp's
/// GGUF converter permutes Q and K so that its adjacent pairs equal Hugging Face's halves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RopeMode {
    /// Pairs (x[2i], x[2i+1]): GGUF / llama.cpp, rope type "NORM" (Llama in GGUF files).
    Adjacent,
    /// Pairs (x[i], x[i + d/2]): Hugging Face `rotate_half` (and llama.cpp's "NEOX" type).
    Halves,
}

/// Every computing operation, one variant per kernel family (its name is the family's file
/// stem); the family's own enum or params say which of its operations. Leaves (inputs,
/// weights, state) are `NodeKind`s, not ops.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Op {
    Elementwise(Elementwise),
    /// Batched a · b, or a · bᵀ (weights stored [out, in]), with bias and activation epilogues.
    Matmul(MatmulParams),
    Copy(CopyOp),
    /// The same elements under another shape: no kernel, the node shares its input's buffer.
    Reshape,
    /// Softmax over the last dimension, with optional scale, causal mask and padding mask
    /// (inputs[1], when `mask`).
    Softmax(SoftmaxParams),
    /// Output dimension k is input dimension `perm[k]` (the first `rank` entries are used).
    Layout(Permute),
    /// Fused scaled dot-product attention (flash style): q [Lq, H, d], k/v [Lk, Hkv, d], optional
    /// key padding mask [Lk] (inputs[3]) -> [Lq, H, d]. `AttentionParams::imp` picks the
    /// kernel: tiles of queries (prompts, encoders) or split-key decode (a few queries against
    /// a long KV cache: parts of the key range in parallel, then a merge).
    Attention(AttentionParams),
    /// Rows of a table (inputs[0], [V, D], f32/f16/q8_0/q4_1) gathered by the u32 ids of
    /// inputs[1] (any shape); the output, f32, has shape ids.shape + [D]. An id >= V gives a
    /// row of zeros (no out-of-bounds read, no error on the GPU).
    Embedding,
    Norm(Norm),
    /// Rotary position embedding of x [T, H, d].
    Rope(RopeParams),
    Sample(SampleOp),
    /// Sorting and permutations of u32 rows (argsort, inverse, gather): see `Graph::argsort`.
    Sort(super::SortOp),
    /// Reformer attention (kernel family `lsh`): hashing, chunked attention over the sorted
    /// order, combination of rounds, local attention. See `graph::lsh`.
    Lsh(LshOp),
    /// Reformer's cached decoding step (kernel family `lsh_decode`): the new token's buckets
    /// and its LSH or local attention over per-layer caches. See `graph::lsh_decode`.
    LshDecode(super::lsh_decode::LshDecodeOp),
    /// Fourier transforms (FNet mixing, complex FFTs along an axis): see `FftOp`.
    Fft(super::fft::FftOp),
    /// Rotary embedding of a fused q/k/v projection [T, (H + 2·Hkv)·d] with the keys and values
    /// written into KV-cache states (inputs[1] and inputs[2], in place) -> rotated q [T, H, d].
    /// See `Graph::rope_kv`.
    RopeKv(super::rope_kv::RopeKvParams),
}

/// Pointwise ops (family elementwise).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Elementwise {
    /// a + b, b broadcast over a's leading dimensions.
    Add,
    /// a * b, b broadcast over a's leading dimensions.
    Mul,
    /// a * factor.
    Scale(Scalar),
    Activation(Activation),
}

/// Parameters of a matmul node: a · b, or a · bᵀ when `trans_b`; then + bias (inputs[2], when
/// `bias`) and the activation, fused as an epilogue.
///
/// Linear layers (`trans_b`, a plain [n, k] weight) may fuse more (see `Graph::linear_with`);
/// the optional inputs follow in this order: bias, the up weight (`swiglu`), the RMSNorm gain
/// (`rms`), the residual.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Default)]
pub struct MatmulParams {
    pub trans_b: bool,
    pub bias: bool,
    pub act: Option<Activation>,
    pub imp: MatmulImpl,
    /// silu(x · bᵀ) · (x · upᵀ): a second weight of b's shape and dtype is an input, and the
    /// SwiGLU product is the epilogue (no bias, no other activation).
    pub swiglu: bool,
    /// RMSNorm of each row of x as a prologue, with this eps and the gain [k] as an input:
    /// the product is taken of rms_norm(x, gain, eps).
    pub rms: Option<f32>,
    /// A tensor of the output's shape added last (after bias, activation and SwiGLU).
    pub residual: bool,
}

impl MatmulParams {
    /// Whether the node uses a fused prologue or epilogue beyond bias and activation.
    pub fn is_fused(&self) -> bool {
        self.swiglu || self.rms.is_some() || self.residual
    }

    /// Input indices of the optional operands: (bias, up, gain, residual).
    pub fn slots(&self) -> (Option<usize>, Option<usize>, Option<usize>, Option<usize>) {
        let mut next = 2;
        let mut take = |on: bool| {
            on.then(|| {
                next += 1;
                next - 1
            })
        };
        (take(self.bias), take(self.swiglu), take(self.rms.is_some()), take(self.residual))
    }
}

/// Row copies (family copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CopyOp {
    /// Writes the source rows into a state tensor in place, starting at the row held in
    /// runtime slot `slot`. The node's value is the updated state.
    WriteRows { slot: u32 },
    /// Rows start..start+count of a matrix (leading dimensions flattened into rows).
    Rows { start: u32, count: u32 },
    /// The inputs' rows one after another (each input's leading dimensions flattened into
    /// rows; all have the same row length).
    ConcatRows,
}

/// Output dimension k is input dimension `perm[k]` (the first `rank` entries are used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Permute {
    pub perm: [u8; 4],
    pub rank: u8,
}

/// Normalisations over the last dimension (family norm).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Norm {
    /// (x - mean) / sqrt(var + eps) · w + b (inputs x, w, b).
    Layer { eps: f32 },
    /// x / sqrt(mean(x²) + eps) · w (Llama; inputs x, w).
    Rms { eps: f32 },
}

/// Rotary position embedding: pair i of token t turns by (start + t) · theta^(-2i/d), where
/// `start` is held in runtime slot `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RopeParams {
    pub mode: RopeMode,
    pub theta: f32,
    pub slot: u32,
}

/// Token choice from rows of logits (family sample).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum SampleOp {
    /// Index of the largest element of each row (u32; ties -> lowest index, NaN counts as the
    /// largest, as torch.argmax).
    Argmax,
    /// Draws one token id per row of logits: temperature (f32 in runtime slot
    /// `temperature_slot`; <= 0 means greedy), then top-k (0 = off), then top-p (1 = off), with
    /// a seed from runtime slot `seed_slot`. See `Graph::sample`.
    Draw { top_k: u32, top_p: f32, temperature_slot: u32, seed_slot: u32 },
}

/// Where an attention node's queries sit in the key sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub enum KeyRange {
    /// Every row of k/v is a key; the Lq queries are the last Lq positions (the first query is
    /// at position Lk - Lq). Self-attention over a whole sequence, or cross-attention.
    #[default]
    All,
    /// A KV cache: the first query is at the position held in this runtime slot, and the keys
    /// are rows 0..position + Lq of k/v (the rows after them are not read). One plan then
    /// serves every decoding step.
    Runtime(u32),
}

/// Parameters of a softmax node.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SoftmaxParams {
    /// Multiplies the input before the softmax (1/sqrt(d) for attention scores).
    pub scale: f32,
    /// Mask key j of row i (i counted along the second-to-last dimension) when j > i + offset.
    pub causal: bool,
    pub offset: u32,
    /// A per-key padding mask is given as the second input (0 masks the key).
    pub mask: bool,
}

/// Parameters of the fused attention ops.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AttentionParams {
    /// Query at position p sees keys 0..=p only.
    pub causal: bool,
    /// Multiplies q·k (1/sqrt(d) by default).
    pub scale: f32,
    pub keys: KeyRange,
    /// A key padding mask [Lk] (u32 or f32; 0 masks the key) is the last input.
    pub mask: bool,
    /// Which kernel computes it (the result is the same up to rounding).
    pub imp: AttentionImpl,
}

/// Which attention kernel to use. `Auto` lets the lowering pick by shape and adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub enum AttentionImpl {
    /// Split-key decode for a few queries (up to 4) over a KV cache, tiles otherwise.
    #[default]
    Auto,
    /// Tiles of queries against streamed tiles of keys (one pass).
    Tiled,
    /// The key range in this many parts, each a workgroup, merged in a second pass; 0 lets
    /// the lowering choose from the key count and the adapter.
    SplitKeys(u32),
}

impl Op {
    /// The operation's name, used in dumps and timing tables.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Elementwise(Elementwise::Add) => "add",
            Op::Elementwise(Elementwise::Mul) => "mul",
            Op::Elementwise(Elementwise::Scale(_)) => "scale",
            Op::Elementwise(Elementwise::Activation(Activation::GeluErf)) => "gelu_erf",
            Op::Elementwise(Elementwise::Activation(Activation::GeluTanh)) => "gelu_tanh",
            Op::Elementwise(Elementwise::Activation(Activation::Silu)) => "silu",
            Op::Elementwise(Elementwise::Activation(Activation::Relu)) => "relu",
            Op::Elementwise(Elementwise::Activation(Activation::Tanh)) => "tanh",
            Op::Matmul(m) if m.swiglu => "linear_swiglu",
            Op::Matmul(m) if m.is_fused() => "linear_fused",
            Op::Matmul(_) => "matmul",
            Op::Copy(CopyOp::WriteRows { .. }) => "write_rows",
            Op::Copy(CopyOp::Rows { .. }) => "rows",
            Op::Copy(CopyOp::ConcatRows) => "concat_rows",
            Op::Reshape => "reshape",
            Op::Softmax(_) => "softmax",
            Op::Layout(_) => "permute",
            Op::Attention(_) => "attention",
            Op::Embedding => "embedding",
            Op::Norm(Norm::Layer { .. }) => "layer_norm",
            Op::Norm(Norm::Rms { .. }) => "rms_norm",
            Op::Rope(RopeParams { mode: RopeMode::Adjacent, .. }) => "rope_adjacent",
            Op::Rope(RopeParams { mode: RopeMode::Halves, .. }) => "rope_halves",
            Op::Sample(SampleOp::Argmax) => "argmax",
            Op::Sample(SampleOp::Draw { .. }) => "sample",
            Op::Sort(s) => s.name(),
            Op::Lsh(l) => l.name(),
            Op::LshDecode(l) => l.name(),
            Op::Fft(super::fft::FftOp::Mix(_)) => "fourier_mix",
            Op::Fft(super::fft::FftOp::Complex { .. }) => "fft",
            Op::RopeKv(_) => "rope_kv",
        }
    }
}
