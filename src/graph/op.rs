//! The closed set of operations a graph can hold. An op's name is its kernel's entry point.

use serde::Serialize;

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
}

/// Which matmul kernel to use. `Auto` lets the lowering pick by shape, dtype and adapter
/// features; the others force one kernel (benchmarks, tests, debugging).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub enum MatmulImpl {
    #[default]
    Auto,
    /// The one-thread-per-output baseline (f32 B only).
    Naive,
    /// The workgroup-tiled GEMM (`kernels::gemm`, f32 or f16 B).
    Tiled,
    /// The subgroup-broadcast GEMM (`kernels::gemm`, f32 or f16 B); needs SUBGROUP.
    Subgroup,
}

/// Every computing operation. Leaves (inputs, weights, state) are `NodeKind`s, not ops.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Op {
    /// a + b, b broadcast over a's leading dimensions.
    Add,
    /// a * b, b broadcast over a's leading dimensions.
    Mul,
    /// a * factor.
    Scale(Scalar),
    Activation(Activation),
    /// Batched a · b, or a · bᵀ when `trans_b` (weights stored [out, in]); then + bias
    /// (inputs[2], when `bias`) and the activation, fused as an epilogue.
    Matmul { trans_b: bool, bias: bool, act: Option<Activation>, imp: MatmulImpl },
    /// Writes the source rows into a state tensor in place, starting at the row held in
    /// runtime slot `slot`. The node's value is the updated state.
    WriteRows { slot: u32 },
    /// The same elements under another shape: no kernel, the node shares its input's buffer.
    Reshape,
}

impl Op {
    /// The kernel entry point's name, used in dumps and timing tables.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Scale(_) => "scale",
            Op::Activation(Activation::GeluErf) => "gelu_erf",
            Op::Activation(Activation::GeluTanh) => "gelu_tanh",
            Op::Activation(Activation::Silu) => "silu",
            Op::Activation(Activation::Relu) => "relu",
            Op::Matmul { .. } => "matmul",
            Op::WriteRows { .. } => "write_rows",
            Op::Reshape => "reshape",
        }
    }
}
