enable f16;

// f16 B (weights stored in half precision, activations and accumulation in f32) for the GEMM
// kernels (families gemm_f16 and gemm_f16_subgroup): the same functions as gemm_b32.wgsl, each
// widening what it loads to f32 (exactly: every f16 is an f32). Needs the SHADER_F16 feature,
// so only modules created on adapters that have it include this prelude. A vec4 of f16 is 8
// bytes: buffers padded to 16 bytes hold whole vec4s here too.

@group(0) @binding(4) var<storage, read> b: array<vec4<f16>>;

// B[k][col .. col+3] (B stored [k, n]) of the batch starting at element `base`, col a multiple
// of 4. Zero past the last row of B (the last k-step of a tile) and past the end of the row
// (edge tiles stick out of B), so those terms add nothing.
fn gemm_load_b_nn(base: u32, k: u32, col: u32) -> vec4<f32> {
    if (k >= p.k || col >= p.n) {
        return vec4<f32>(0.0);
    }
    let i = base + k * p.n + col;
    if (p.vec_b == 1u) {
        // n % 4 == 0: the run is inside the row and i is a multiple of 4.
        return vec4<f32>(b[i / 4u]);
    }
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        // Scalar fallback: only the elements still in this row.
        if (col + j < p.n) {
            v[j] = f32(b[(i + j) / 4u][(i + j) % 4u]);
        }
    }
    return v;
}

// B[col][k .. k+3] (B stored [n, k], the transposed entry points), k a multiple of 4; zero
// past the last column of C and past the end of the row, as above.
fn gemm_load_b_nt(base: u32, col: u32, k: u32) -> vec4<f32> {
    if (col >= p.n || k >= p.k) {
        return vec4<f32>(0.0);
    }
    let i = base + col * p.k + k;
    if (p.vec_b == 1u) {
        // k % 4 == 0: the run is inside the row and i is a multiple of 4.
        return vec4<f32>(b[i / 4u]);
    }
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        // Scalar fallback: only the elements still in this row.
        if (k + j < p.k) {
            v[j] = f32(b[(i + j) / 4u][(i + j) % 4u]);
        }
    }
    return v;
}

// Unchecked forms for fast paths: only for vec_b == 1, k inside B, and a column index the
// caller has clamped into B (edge tiles then read real elements of B whose products are never
// stored, instead of branching on every load).
fn gemm_load_b_nn_fast(base: u32, k: u32, col: u32) -> vec4<f32> {
    return vec4<f32>(b[(base + k * p.n + col) / 4u]);
}

fn gemm_load_b_nt_fast(base: u32, col: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(b[(base + col * p.k + k) / 4u]);
}
