//! Reference for shaders/copy.wgsl.

use super::Cx;
use crate::error::Result;
use crate::graph::CopyOp;
use crate::tensor::HostData;

/// The state with `src`'s rows written from row `start` on (rows past the end dropped).
pub fn write_rows(state: &[f32], src: &[f32], cols: usize, start: usize) -> Vec<f32> {
    let mut out = state.to_vec();
    for (i, &v) in src.iter().enumerate() {
        let dst = (start + i / cols) * cols + i % cols;
        if dst < out.len() {
            out[dst] = v;
        }
    }
    out
}

/// Rows start..start+count of a [rows, cols] matrix.
pub fn rows(src: &[f32], cols: usize, start: usize, count: usize) -> Vec<f32> {
    src[start * cols..(start + count) * cols].to_vec()
}

/// The reference of a copy node. An f16 state (KV cache) takes the rows rounded to f16, as
/// the copy_f16 kernel does.
pub fn eval(cx: &Cx, op: &CopyOp) -> Result<HostData> {
    match *op {
        CopyOp::WriteRows { slot } => {
            let (cols, start) = (cx.shapes[0][1], cx.slot(slot) as usize);
            let src = cx.f32(1, "write_rows")?;
            if let HostData::F16(state) = cx.inputs[0] {
                let state: Vec<f32> = state.iter().map(|x| x.to_f32()).collect();
                let y = write_rows(&state, src, cols, start);
                return Ok(HostData::F16(y.into_iter().map(half::f16::from_f32).collect()));
            }
            Ok(HostData::F32(write_rows(cx.f32(0, "write_rows")?, src, cols, start)))
        }
        CopyOp::ConcatRows => {
            let mut out = Vec::with_capacity(cx.out.iter().product());
            for i in 0..cx.inputs.len() {
                out.extend_from_slice(cx.f32(i, "concat_rows")?);
            }
            Ok(HostData::F32(out))
        }
        CopyOp::Rows { start, count } => {
            Ok(HostData::F32(rows(cx.f32(0, "rows")?, cx.out[1], start as usize, count as usize)))
        }
    }
}
