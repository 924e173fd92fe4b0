//! Reference for shaders/embedding.wgsl: rows of a table gathered by id.

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
