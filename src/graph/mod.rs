//! Graphs: nodes are {kind, inputs, shape, dtype}; builders check shapes and dtypes as nodes
//! are added, so a graph that exists is a graph that can run.
//!
//! ```
//! use webformer::{Graph, DType};
//! let mut g = Graph::new();
//! let x = g.input("x", &[4, 8], DType::F32).unwrap();
//! let w = g.weight("w", &[16, 8], vec![0.5f32; 128]).unwrap();
//! let y = g.matmul_t(x, w).unwrap();          // [4, 16] = x · wᵀ
//! let y = g.gelu(y).unwrap();
//! g.output(y).unwrap();
//! assert!(g.add(x, y).is_err());               // [4, 8] + [4, 16] does not broadcast
//! ```

mod attention;
mod fft;
mod linear;
mod lsh;
mod lsh_decode;
mod op;
pub mod plan;
mod rope_kv;
mod sort;

pub use attention::{AttentionOptions, SoftmaxOptions, MAX_HEAD_DIM, MAX_SPLITS};
pub use fft::{FftOp, MixImpl};
pub use linear::LinearFusion;
pub use lsh::{
    Buckets, ChunkOptions, LocalOptions, LshOp, LshOptions, LSH_MAX_HEAD_DIM, MASK_VALUE, MAX_ROUNDS as LSH_MAX_ROUNDS,
    SELF_MASK_VALUE,
};
pub use lsh_decode::{DecodeAttend, DecodeHash, DecodeLocal, DecodeOptions, LshDecodeOp, DECODE_MAX_WINDOW};
pub use op::{
    Activation, AttentionImpl, AttentionParams, CopyOp, Elementwise, KeyRange, MatmulImpl, MatmulParams, Norm, Op,
    Permute, RopeMode, RopeParams, SampleOp, Scalar, SoftmaxParams,
};
pub use rope_kv::RopeKvParams;
pub use sort::SortOp;

use std::fmt::Write;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::tensor::{numel, DType, HostData};

/// Number of u32 runtime slots a graph can change between runs (position, length, seed...).
pub const RUNTIME_SLOTS: usize = 16;

/// Options of `Graph::matmul_with`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatmulOptions {
    /// b is stored [..., n, k] (linear weights) rather than [..., k, n].
    pub trans_b: bool,
    /// Added to every row of the product (shape [n]).
    pub bias: Option<NodeId>,
    /// Applied after the bias.
    pub act: Option<Activation>,
    pub imp: MatmulImpl,
}

/// Options of `Graph::sample`. The temperature and the seed live in runtime slots so that one
/// plan serves every decoding step (the caller changes the seed each step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleOptions {
    /// Keep only the `top_k` largest logits (ties at the k-th value kept too); 0 turns it off,
    /// 1 is greedy.
    pub top_k: u32,
    /// Then keep the smallest set of largest logits whose probability reaches `top_p`
    /// (in (0, 1]; 1 turns it off).
    pub top_p: f32,
    /// Runtime slot holding the temperature as f32 bits; a value <= 0 (or NaN) means greedy.
    pub temperature_slot: u32,
    /// Runtime slot holding the u32 seed of the draw.
    pub seed_slot: u32,
}

/// Largest row a sampler accepts: counts are kept in f32, exact up to 2^24.
pub const SAMPLE_MAX_ROW: usize = 1 << 24;

/// Index of a node in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct NodeId(pub usize);

/// What a node is: a value supplied from outside, or computed by an op.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// Set before each run (token ids, activations).
    Input { name: String },
    /// Constant, uploaded once when the executor is built (shared by graphs of one model).
    Weight { name: String, data: Arc<HostData> },
    /// Persistent across runs and updated in place by ops such as `WriteRows` (KV caches).
    /// Starts as zeros.
    State { name: String },
    /// Computed.
    Op(Op),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub inputs: Vec<NodeId>,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl Node {
    /// Bytes of the node's value.
    pub fn bytes(&self) -> u64 {
        self.dtype.bytes_for(numel(&self.shape)) as u64
    }

    /// Short label for dumps: the op name or the leaf's name.
    pub fn label(&self) -> String {
        match &self.kind {
            NodeKind::Input { name } => format!("input '{name}'"),
            NodeKind::Weight { name, .. } => format!("weight '{name}'"),
            NodeKind::State { name } => format!("state '{name}'"),
            NodeKind::Op(op) => op.name().to_string(),
        }
    }

    /// The op, when the node computes.
    pub fn op(&self) -> Option<&Op> {
        match &self.kind {
            NodeKind::Op(op) => Some(op),
            _ => None,
        }
    }

    /// In-place updates: the node writes into the buffer of its first input (a state).
    pub fn is_in_place(&self) -> bool {
        matches!(self.kind, NodeKind::Op(Op::Copy(CopyOp::WriteRows { .. })))
    }

    /// Inputs the node writes in place besides computing a value of its own (the KV caches of
    /// `Op::RopeKv`): their states change when the node runs, and nodes added after it read
    /// the new contents. Empty for every other op.
    pub fn state_writes(&self) -> &'static [usize] {
        match self.kind {
            NodeKind::Op(Op::RopeKv(_)) => RopeKvParams::STATE_WRITES,
            _ => &[],
        }
    }

    /// Views: the node is its first input under another shape; nothing runs.
    pub fn is_view(&self) -> bool {
        matches!(self.kind, NodeKind::Op(Op::Reshape))
    }

    /// The node's value lives in its first input's buffer (in-place update or view).
    pub fn aliases_input(&self) -> bool {
        self.is_in_place() || self.is_view()
    }
}

/// A computation graph. Nodes are added in order, each after its inputs.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    outputs: Vec<NodeId>,
}

fn shape_err(op: &str, detail: String) -> Error {
    Error::Shape { op: op.into(), detail }
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// Names and ids of the graph's inputs, in the order they were added.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, NodeId)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| match &n.kind {
            NodeKind::Input { name } => Some((name.as_str(), NodeId(i))),
            _ => None,
        })
    }

    fn push(&mut self, kind: NodeKind, inputs: Vec<NodeId>, shape: Vec<usize>, dtype: DType) -> NodeId {
        self.nodes.push(Node { kind, inputs, shape, dtype });
        NodeId(self.nodes.len() - 1)
    }

    fn check_leaf(&self, what: &str, name: &str, shape: &[usize]) -> Result<()> {
        if shape.contains(&0) {
            return Err(shape_err(what, format!("'{name}' has shape {shape:?}; every dimension must be at least 1")));
        }
        let dup = self.nodes.iter().any(|n| match &n.kind {
            NodeKind::Input { name: m } | NodeKind::Weight { name: m, .. } | NodeKind::State { name: m } => m == name,
            NodeKind::Op(_) => false,
        });
        if dup {
            return Err(shape_err(what, format!("the name '{name}' is already used in this graph")));
        }
        Ok(())
    }

    fn check_unquantized(what: &str, name: &str, dtype: DType) -> Result<()> {
        if dtype.is_quantized() {
            return Err(shape_err(what, format!("'{name}' cannot be {dtype}: only weights may be block-quantized")));
        }
        Ok(())
    }

    /// A value set before each run.
    pub fn input(&mut self, name: &str, shape: &[usize], dtype: DType) -> Result<NodeId> {
        self.check_leaf("input", name, shape)?;
        Self::check_unquantized("input", name, dtype)?;
        Ok(self.push(NodeKind::Input { name: name.into() }, vec![], shape.to_vec(), dtype))
    }

    /// A constant uploaded once.
    pub fn weight(&mut self, name: &str, shape: &[usize], data: impl Into<HostData>) -> Result<NodeId> {
        self.weight_arc(name, shape, Arc::new(data.into()))
    }

    /// A constant whose host copy is shared (several graphs of one model hold the same data).
    pub fn weight_arc(&mut self, name: &str, shape: &[usize], data: Arc<HostData>) -> Result<NodeId> {
        self.check_leaf("weight", name, shape)?;
        if data.len() != numel(shape) {
            return Err(shape_err(
                "weight",
                format!(
                    "'{name}' has shape {shape:?} ({} elements) but {} values were given",
                    numel(shape),
                    data.len()
                ),
            ));
        }
        let dtype = data.dtype();
        if dtype.is_quantized() && !shape[shape.len() - 1].is_multiple_of(crate::tensor::QK) {
            return Err(shape_err(
                "weight",
                format!(
                    "'{name}' is {dtype} with shape {shape:?}: the last dimension must be a multiple of {}",
                    crate::tensor::QK
                ),
            ));
        }
        if dtype.is_quantized() && data.as_bytes().len() != dtype.bytes_for(data.len()) {
            return Err(shape_err(
                "weight",
                format!(
                    "'{name}' has {} bytes, but {} {dtype} elements take {}",
                    data.as_bytes().len(),
                    data.len(),
                    dtype.bytes_for(data.len())
                ),
            ));
        }
        Ok(self.push(NodeKind::Weight { name: name.into(), data }, vec![], shape.to_vec(), dtype))
    }

    /// Persistent state (e.g. a KV cache), zero at first, updated in place by `write_rows`.
    pub fn state(&mut self, name: &str, shape: &[usize], dtype: DType) -> Result<NodeId> {
        self.check_leaf("state", name, shape)?;
        Self::check_unquantized("state", name, dtype)?;
        Ok(self.push(NodeKind::State { name: name.into() }, vec![], shape.to_vec(), dtype))
    }

    /// Marks a node as an output: kept in its own buffer and readable after a run.
    pub fn output(&mut self, id: NodeId) -> Result<()> {
        self.get("output", id)?;
        if !self.outputs.contains(&id) {
            self.outputs.push(id);
        }
        Ok(())
    }

    fn get(&self, op: &str, id: NodeId) -> Result<&Node> {
        self.nodes.get(id.0).ok_or(Error::UnknownNode { op: op.into(), id: id.0 })
    }

    fn f32_input(&self, op: &str, id: NodeId) -> Result<&Node> {
        let n = self.get(op, id)?;
        if n.dtype != DType::F32 {
            return Err(Error::DType {
                what: format!("{op}: input #{} ({})", id.0, n.label()),
                expected: "f32".into(),
                got: n.dtype.to_string(),
            });
        }
        Ok(n)
    }

    fn broadcast_binary(&mut self, op: Op, a: NodeId, b: NodeId) -> Result<NodeId> {
        let name = op.name();
        let sa = self.f32_input(name, a)?.shape.clone();
        let sb = self.f32_input(name, b)?.shape.clone();
        if sb.len() > sa.len() || sa[sa.len() - sb.len()..] != sb[..] {
            return Err(shape_err(
                name,
                format!(
                    "cannot combine {sa:?} with {sb:?}: the second shape must equal the first or a trailing part of it"
                ),
            ));
        }
        Ok(self.push(NodeKind::Op(op), vec![a, b], sa, DType::F32))
    }

    /// a + b; b's shape is a's or a trailing part of it (bias, residual).
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.broadcast_binary(Op::Elementwise(Elementwise::Add), a, b)
    }

    /// a * b; b's shape is a's or a trailing part of it (gain, gating).
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.broadcast_binary(Op::Elementwise(Elementwise::Mul), a, b)
    }

    fn unary(&mut self, op: Op, a: NodeId) -> Result<NodeId> {
        let shape = self.f32_input(op.name(), a)?.shape.clone();
        Ok(self.push(NodeKind::Op(op), vec![a], shape, DType::F32))
    }

    /// a * factor, the factor fixed or read from a runtime slot.
    pub fn scale(&mut self, a: NodeId, factor: Scalar) -> Result<NodeId> {
        if let Scalar::Runtime(slot) = factor {
            check_slot(slot)?;
        }
        self.unary(Op::Elementwise(Elementwise::Scale(factor)), a)
    }

    pub fn activation(&mut self, a: NodeId, act: Activation) -> Result<NodeId> {
        self.unary(Op::Elementwise(Elementwise::Activation(act)), a)
    }

    pub fn gelu(&mut self, a: NodeId) -> Result<NodeId> {
        self.activation(a, Activation::GeluErf)
    }

    pub fn gelu_tanh(&mut self, a: NodeId) -> Result<NodeId> {
        self.activation(a, Activation::GeluTanh)
    }

    pub fn silu(&mut self, a: NodeId) -> Result<NodeId> {
        self.activation(a, Activation::Silu)
    }

    pub fn relu(&mut self, a: NodeId) -> Result<NodeId> {
        self.activation(a, Activation::Relu)
    }

    /// a · b: a [..., m, k], b [k, n] (shared) or [..., k, n] (same leading dims) -> [..., m, n].
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.matmul_with(a, b, MatmulOptions::default())
    }

    /// a · bᵀ: b stored [n, k] or [..., n, k], as linear weights are in checkpoints.
    pub fn matmul_t(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.matmul_with(a, b, MatmulOptions { trans_b: true, ..Default::default() })
    }

    /// A linear layer, act(x · wᵀ + bias): w [out, in] (f32, f16, q8_0 or q4_1), bias [out].
    pub fn linear(&mut self, x: NodeId, w: NodeId, bias: Option<NodeId>, act: Option<Activation>) -> Result<NodeId> {
        self.matmul_with(x, w, MatmulOptions { trans_b: true, bias, act, imp: MatmulImpl::Auto })
    }

    /// The general matmul: see `MatmulOptions`.
    pub fn matmul_with(&mut self, a: NodeId, b: NodeId, o: MatmulOptions) -> Result<NodeId> {
        let name = if o.trans_b { "matmul (b transposed)" } else { "matmul" };
        let sa = self.f32_input(name, a)?.shape.clone();
        let nb = self.get(name, b)?;
        let (sb, db) = (nb.shape.clone(), nb.dtype);
        if db == DType::U32 {
            return Err(Error::DType {
                what: format!("{name}: b (#{})", b.0),
                expected: "f32, f16, q8_0 or q4_1".into(),
                got: db.to_string(),
            });
        }
        if sa.len() < 2 || sb.len() < 2 {
            return Err(shape_err(name, format!("needs matrices (rank >= 2), got {sa:?} and {sb:?}")));
        }
        if db.is_quantized() && (!o.trans_b || sb.len() != 2) {
            return Err(shape_err(name, format!("a {db} b must be a plain [out, in] weight used transposed (as GGUF stores it), got {sb:?} with trans_b={}", o.trans_b)));
        }
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (kb, n) =
            if o.trans_b { (sb[sb.len() - 1], sb[sb.len() - 2]) } else { (sb[sb.len() - 2], sb[sb.len() - 1]) };
        if k != kb {
            return Err(shape_err(name, format!("inner dimensions differ: {sa:?} has k={k}, {sb:?} has k={kb}")));
        }
        if sb.len() > 2 && sb[..sb.len() - 2] != sa[..sa.len() - 2] {
            return Err(shape_err(
                name,
                format!("batch dimensions differ: {sa:?} vs {sb:?} (b may also be a plain matrix shared by the batch)"),
            ));
        }
        let mut inputs = vec![a, b];
        if let Some(bias) = o.bias {
            let sbias = self.f32_input(name, bias)?.shape.clone();
            if sbias != [n] {
                return Err(shape_err(name, format!("bias must have shape [{n}], got {sbias:?}")));
            }
            inputs.push(bias);
        }
        let mut out = sa[..sa.len() - 2].to_vec();
        out.extend([m, n]);
        let op = Op::Matmul(MatmulParams {
            trans_b: o.trans_b,
            bias: o.bias.is_some(),
            act: o.act,
            imp: o.imp,
            ..Default::default()
        });
        Ok(self.push(NodeKind::Op(op), inputs, out, DType::F32))
    }

    /// Writes `src` [r, c] (f32) into `state` [R, c] from the row held in runtime slot `slot`,
    /// in place; an f16 state (a half-precision KV cache) takes the values rounded to f16.
    /// Returns the updated state; later readers of the state should use this id.
    pub fn write_rows(&mut self, state: NodeId, src: NodeId, slot: u32) -> Result<NodeId> {
        let name = "write_rows";
        check_slot(slot)?;
        let st = self.get(name, state)?.clone();
        if !matches!(st.dtype, DType::F32 | DType::F16) {
            return Err(Error::DType {
                what: format!("{name}: the state ({})", st.label()),
                expected: "f32 or f16".into(),
                got: st.dtype.to_string(),
            });
        }
        let ss = self.f32_input(name, src)?.shape.clone();
        let root = self.storage_root(state);
        if !matches!(self.nodes[root.0].kind, NodeKind::State { .. }) {
            return Err(shape_err(
                name,
                format!("the destination must be a state node (or a write into one), not {}", st.label()),
            ));
        }
        if self.storage_root(src) == root {
            return Err(shape_err(name, "the source must not be the state it is written into".into()));
        }
        if st.shape.len() != 2 || ss.len() != 2 || st.shape[1] != ss[1] || ss[0] > st.shape[0] {
            return Err(shape_err(
                name,
                format!("needs state [rows, cols] and source [r <= rows, cols], got {:?} and {ss:?}", st.shape),
            ));
        }
        Ok(self.push(NodeKind::Op(Op::Copy(CopyOp::WriteRows { slot })), vec![state, src], st.shape, st.dtype))
    }

    /// Token embeddings: row `ids[i]` of `table` [V, D] (f32, f16, q8_0 or q4_1) for every id;
    /// ids are u32 of any shape and the output is f32 with shape ids.shape + [D]. An id >= V
    /// gives a row of zeros (the GPU cannot report it, so it is defined rather than an error).
    ///
    /// ```
    /// use webformer::{DType, Graph};
    /// let mut g = Graph::new();
    /// let table = g.weight("wte", &[10, 4], vec![0.5f32; 40]).unwrap();
    /// let ids = g.input("ids", &[2, 3], DType::U32).unwrap();
    /// let x = g.embedding(table, ids).unwrap();
    /// assert_eq!(g.node(x).shape, vec![2, 3, 4]);
    /// ```
    pub fn embedding(&mut self, table: NodeId, ids: NodeId) -> Result<NodeId> {
        let name = "embedding";
        // Shapes and dtypes only: cloning the node would copy a weight table's data.
        let t = self.get(name, table)?;
        let (t_shape, t_dtype, t_label) = (t.shape.clone(), t.dtype, t.label());
        let i = self.get(name, ids)?;
        let (i_shape, i_dtype, i_label) = (i.shape.clone(), i.dtype, i.label());
        if !matches!(t_dtype, DType::F32 | DType::F16 | DType::Q8_0 | DType::Q4_1) {
            return Err(Error::DType {
                what: format!("{name}: table #{} ({t_label})", table.0),
                expected: "f32, f16, q8_0 or q4_1".into(),
                got: t_dtype.to_string(),
            });
        }
        if i_dtype != DType::U32 {
            return Err(Error::DType {
                what: format!("{name}: ids #{} ({i_label})", ids.0),
                expected: "u32".into(),
                got: i_dtype.to_string(),
            });
        }
        if t_shape.len() != 2 {
            return Err(shape_err(name, format!("the table must be a matrix [vocabulary, width], got {t_shape:?}")));
        }
        let mut out = i_shape;
        out.push(t_shape[1]);
        Ok(self.push(NodeKind::Op(Op::Embedding), vec![table, ids], out, DType::F32))
    }

    /// The same elements as `x` under `shape` (same count). Free: no kernel, no copy.
    pub fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId> {
        let n = self.get("reshape", x)?.clone();
        if numel(shape) != numel(&n.shape) || shape.contains(&0) {
            return Err(shape_err(
                "reshape",
                format!(
                    "cannot view {:?} ({} elements) as {shape:?} ({} elements)",
                    n.shape,
                    numel(&n.shape),
                    numel(shape)
                ),
            ));
        }
        Ok(self.push(NodeKind::Op(Op::Reshape), vec![x], shape.to_vec(), n.dtype))
    }

    /// Rows start..start+count of x: [..., cols] viewed as [rows, cols] -> [count, cols]
    /// (a copy; e.g. the last token's hidden state).
    pub fn rows(&mut self, x: NodeId, start: usize, count: usize) -> Result<NodeId> {
        let n = self.f32_input("rows", x)?;
        let cols = n.shape[n.shape.len() - 1];
        let total = numel(&n.shape) / cols;
        if count == 0 || start + count > total {
            return Err(shape_err(
                "rows",
                format!("rows {start}..{} are outside the {total} rows of {:?}", start + count, n.shape),
            ));
        }
        let start32 = u32::try_from(start).map_err(|_| shape_err("rows", format!("start {start} exceeds 32 bits")))?;
        Ok(self.push(
            NodeKind::Op(Op::Copy(CopyOp::Rows { start: start32, count: count as u32 })),
            vec![x],
            vec![count, cols],
            DType::F32,
        ))
    }

    /// The rows of `xs` one after another: each [..., cols] viewed as [rows_i, cols] ->
    /// [Σ rows_i, cols] (a copy, one launch per input). With `rows`, this runs an op over a
    /// matrix in row chunks, so that only one chunk's intermediates are alive at a time.
    pub fn concat_rows(&mut self, xs: &[NodeId]) -> Result<NodeId> {
        let name = "concat_rows";
        let mut total = 0usize;
        let mut cols = None;
        for &x in xs {
            let s = &self.f32_input(name, x)?.shape;
            let c = s[s.len() - 1];
            if *cols.get_or_insert(c) != c {
                return Err(shape_err(
                    name,
                    format!("rows of {c} and of {} columns cannot be stacked", cols.unwrap_or(0)),
                ));
            }
            total += numel(s) / c;
        }
        let Some(cols) = cols else { return Err(shape_err(name, "needs at least one input".into())) };
        if u32::try_from(total).is_err() {
            return Err(shape_err(name, format!("{total} rows exceed 32 bits")));
        }
        Ok(self.push(NodeKind::Op(Op::Copy(CopyOp::ConcatRows)), xs.to_vec(), vec![total, cols], DType::F32))
    }

    fn norm_weight(&self, name: &str, id: NodeId, what: &str, n: usize) -> Result<()> {
        let s = &self.f32_input(name, id)?.shape;
        if s[..] != [n] {
            return Err(shape_err(
                name,
                format!("the {what} must have shape [{n}] (the last dimension of x), got {s:?}"),
            ));
        }
        Ok(())
    }

    fn check_eps(name: &str, eps: f32) -> Result<()> {
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(shape_err(name, format!("eps must be finite and >= 0, got {eps}")));
        }
        Ok(())
    }

    /// LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) · w + b, with the
    /// biased variance (as torch.nn.LayerNorm). x [..., n], w [n], b [n].
    pub fn layer_norm(&mut self, x: NodeId, w: NodeId, b: NodeId, eps: f32) -> Result<NodeId> {
        let name = "layer_norm";
        Self::check_eps(name, eps)?;
        let shape = self.f32_input(name, x)?.shape.clone();
        let n = shape[shape.len() - 1];
        self.norm_weight(name, w, "weight", n)?;
        self.norm_weight(name, b, "bias", n)?;
        Ok(self.push(NodeKind::Op(Op::Norm(Norm::Layer { eps })), vec![x, w, b], shape, DType::F32))
    }

    /// RMSNorm over the last dimension, Llama style: x / sqrt(mean(x²) + eps) · w.
    /// x [..., n], w [n].
    pub fn rms_norm(&mut self, x: NodeId, w: NodeId, eps: f32) -> Result<NodeId> {
        let name = "rms_norm";
        Self::check_eps(name, eps)?;
        let shape = self.f32_input(name, x)?.shape.clone();
        let n = shape[shape.len() - 1];
        self.norm_weight(name, w, "weight", n)?;
        Ok(self.push(NodeKind::Op(Op::Norm(Norm::Rms { eps })), vec![x, w], shape, DType::F32))
    }

    /// Rotary position embedding of x [T, H, d] (tokens, heads, head dim; d even): the pair i
    /// of token t is turned by the angle (start + t) · theta^(-2i/d), where `start` is read
    /// from runtime slot `slot` on every run, so a decoding plan is replayed as the position
    /// moves. `mode` says which elements pair up (see `RopeMode`).
    pub fn rope(&mut self, x: NodeId, mode: RopeMode, theta: f32, slot: u32) -> Result<NodeId> {
        let op = Op::Rope(RopeParams { mode, theta, slot });
        let name = op.name();
        check_slot(slot)?;
        let shape = self.f32_input(name, x)?.shape.clone();
        if shape.len() != 3 || shape[2] % 2 != 0 {
            return Err(shape_err(
                name,
                format!("needs x [tokens, heads, head_dim] with an even head_dim, got {shape:?}"),
            ));
        }
        if !(theta.is_finite() && theta > 1.0) {
            return Err(shape_err(name, format!("theta must be a finite number > 1 (e.g. 10000), got {theta}")));
        }
        Ok(self.push(NodeKind::Op(op), vec![x], shape, DType::F32))
    }

    /// Shape of a per-row result: the leading dimensions ([1] for a single row).
    fn row_result(shape: &[usize]) -> Vec<usize> {
        if shape.len() == 1 {
            vec![1]
        } else {
            shape[..shape.len() - 1].to_vec()
        }
    }

    /// Index (u32) of the largest element of each row: x [..., n] -> [...] ([n] -> [1]).
    /// Ties go to the lowest index and NaN counts as the largest, as in torch.argmax.
    pub fn argmax(&mut self, x: NodeId) -> Result<NodeId> {
        let shape = self.f32_input("argmax", x)?.shape.clone();
        Ok(self.push(NodeKind::Op(Op::Sample(SampleOp::Argmax)), vec![x], Self::row_result(&shape), DType::U32))
    }

    /// Draws a token id (u32) from logits [n] -> [1] or [rows, n] -> [rows] on the GPU:
    /// softmax(logits / temperature) restricted by top-k, then top-p, sampled with a
    /// counter-based hash of the seed (and row), so a fixed seed repeats. NaN logits are never
    /// drawn (they count as -inf); temperature <= 0, top_k = 1 or an infinite largest logit
    /// give the greedy argmax. See shaders/sample.wgsl for the algorithm.
    pub fn sample(&mut self, logits: NodeId, o: SampleOptions) -> Result<NodeId> {
        let name = "sample";
        check_slot(o.temperature_slot)?;
        check_slot(o.seed_slot)?;
        let shape = self.f32_input(name, logits)?.shape.clone();
        if shape.len() > 2 {
            return Err(shape_err(name, format!("needs logits [vocab] or [rows, vocab], got {shape:?}")));
        }
        let n = shape[shape.len() - 1];
        if n > SAMPLE_MAX_ROW {
            return Err(shape_err(
                name,
                format!(
                    "rows of {n} logits exceed the sampler's limit of {SAMPLE_MAX_ROW} (counts are exact f32 integers)"
                ),
            ));
        }
        if !(o.top_p > 0.0 && o.top_p <= 1.0) {
            return Err(shape_err(name, format!("top_p must be in (0, 1] (1 turns it off), got {}", o.top_p)));
        }
        let (top_k, top_p) = (o.top_k, o.top_p);
        let op =
            Op::Sample(SampleOp::Draw { top_k, top_p, temperature_slot: o.temperature_slot, seed_slot: o.seed_slot });
        Ok(self.push(NodeKind::Op(op), vec![logits], Self::row_result(&shape), DType::U32))
    }

    /// The node whose buffer holds `id`'s value (following in-place writes and views).
    pub fn storage_root(&self, mut id: NodeId) -> NodeId {
        while self.nodes[id.0].aliases_input() {
            id = self.nodes[id.0].inputs[0];
        }
        id
    }

    /// One line per node: id, kind, inputs, shape, dtype.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let ins: Vec<String> = n.inputs.iter().map(|x| format!("#{}", x.0)).collect();
            let out = if self.outputs.contains(&NodeId(i)) { "  -> output" } else { "" };
            let _ = writeln!(s, "#{i:<4} {:<22} ({:<12}) {:?} {}{out}", n.label(), ins.join(", "), n.shape, n.dtype);
        }
        s
    }

    /// The graph in graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph webformer {\n  node [shape=box, fontname=monospace];\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let style = if self.outputs.contains(&NodeId(i)) { ", style=bold" } else { "" };
            let _ = writeln!(
                s,
                "  n{i} [label=\"#{i} {}\\n{:?} {}\"{style}];",
                n.label().replace('"', "'"),
                n.shape,
                n.dtype
            );
            for x in &n.inputs {
                let _ = writeln!(s, "  n{} -> n{i};", x.0);
            }
        }
        s.push_str("}\n");
        s
    }
}

fn check_slot(slot: u32) -> Result<()> {
    if slot as usize >= RUNTIME_SLOTS {
        return Err(Error::RuntimeSlot { slot: slot as usize, max: RUNTIME_SLOTS });
    }
    Ok(())
}
