//! Plain-loop references: the oracle every kernel is tested against. Written for clarity,
//! in f64 where accumulation order would otherwise blur the comparison.

pub mod attention;
pub mod copy;
pub mod elementwise;
pub mod embedding;
pub mod fft;
pub mod gemm;
pub mod layout;
pub mod lsh;
pub mod lsh_decode;
pub mod matmul;
pub mod norm;
pub mod quant;
pub mod rope;
pub mod rope_kv;
pub mod sample;
pub mod softmax;
pub mod sort;

use crate::error::Error;
use crate::error::Result;
use crate::graph::Op;
use crate::tensor::HostData;

/// What every family's reference is given: the node's input values and shapes, its output
/// shape and the run's runtime slots. Each family has one
/// `eval(cx: &Cx, op: &<its op>) -> Result<HostData>`.
pub struct Cx<'a> {
    pub inputs: &'a [&'a HostData],
    pub shapes: &'a [&'a [usize]],
    pub out: &'a [usize],
    pub runtime: &'a [u32],
}

impl Cx<'_> {
    /// Input `i` as f32 (an error naming `op` if it holds another dtype).
    pub fn f32(&self, i: usize, op: &str) -> Result<&[f32]> {
        self.inputs[i].as_f32(op)
    }

    /// Runtime slot `slot`'s value.
    pub fn slot(&self, slot: u32) -> u32 {
        self.runtime[slot as usize]
    }

    /// The last dimension of input `i`.
    pub fn row_len(&self, i: usize) -> usize {
        let s = self.shapes[i];
        s[s.len() - 1]
    }
}

/// Evaluates one op on host data: the registry of references, one arm per family.
pub fn eval(op: &Op, inputs: &[&HostData], shapes: &[&[usize]], out: &[usize], runtime: &[u32]) -> Result<HostData> {
    let cx = &Cx { inputs, shapes, out, runtime };
    match op {
        Op::Elementwise(o) => elementwise::eval(cx, o),
        Op::Matmul(o) => matmul::eval(cx, o),
        Op::Copy(o) => copy::eval(cx, o),
        Op::Softmax(o) => softmax::eval(cx, o),
        Op::Layout(o) => layout::eval(cx, o),
        Op::Attention(o) => attention::eval(cx, o),
        Op::Embedding => embedding::eval(cx),
        Op::Norm(o) => norm::eval(cx, o),
        Op::Rope(o) => rope::eval(cx, o),
        Op::Sample(o) => sample::eval(cx, o),
        Op::Sort(o) => sort::eval(cx, o),
        Op::Lsh(o) => lsh::eval(cx, o),
        Op::LshDecode(o) => lsh_decode::eval(cx, o),
        Op::Fft(o) => fft::eval(cx, o),
        Op::RopeKv(o) => rope_kv::eval(cx, o),
        Op::Reshape => Ok(inputs[0].clone()),
    }
}

/// The states an op writes in place besides its own value (`Node::state_writes`), as
/// (input index, new contents); empty for ops without such writes.
pub fn state_writes(
    op: &Op,
    inputs: &[&HostData],
    shapes: &[&[usize]],
    out: &[usize],
    runtime: &[u32],
) -> Result<Vec<(usize, HostData)>> {
    let cx = &Cx { inputs, shapes, out, runtime };
    match op {
        Op::RopeKv(o) => rope_kv::state_writes(cx, o),
        _ => Ok(Vec::new()),
    }
}

/// The error for an input of the wrong dtype.
pub(crate) fn dtype_error(what: &str, expected: &str, got: &HostData) -> Error {
    Error::DType { what: what.into(), expected: expected.into(), got: got.dtype().to_string() }
}
