//! Reference for shaders/embedding.wgsl: rows of a table gathered by id.

use super::{dtype_error, Cx};
use crate::error::Result;
use crate::tensor::HostData;

/// Rows `ids[i]` of `table` ([V, D], any dtype, widened to f32 exactly: f16 converted,
/// quantized blocks dequantized as llama.cpp does), one after another. An id >= V gives a row
/// of zeros, as the kernel does.
pub fn embedding(table: &HostData, v: usize, d: usize, ids: &[u32]) -> Vec<f32> {
    let t = table.to_f32();
    let mut out = vec![0f32; ids.len() * d];
    for (row, &id) in out.chunks_mut(d.max(1)).zip(ids) {
        if (id as usize) < v {
            row.copy_from_slice(&t[id as usize * d..][..d]);
        }
    }
    out
}

/// The reference of an embedding node (u32 ids).
pub fn eval(cx: &Cx) -> Result<HostData> {
    let HostData::U32(ids) = cx.inputs[1] else { return Err(dtype_error("embedding ids", "u32", cx.inputs[1])) };
    Ok(HostData::F32(embedding(cx.inputs[0], cx.shapes[0][0], cx.shapes[0][1], ids)))
}
