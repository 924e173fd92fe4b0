//! Reference for shaders/copy.wgsl.

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
