// GGUF-quantized B for the subgroup GEMM (families gemm_q8_0_subgroup, gemm_q4_1_subgroup):
// the binding and dequantizing loads, defining the same functions as gemm_b32.wgsl. Weights are
// one matrix (stride_b = 0) in the plane layout of src/kernels/quant.rs: quants of all blocks,
// then the f32 scale d of every block, then (Q4_1) the f32 min m. Which type is read is decided
// by the constant `GEMM_BQ_Q4_1`, which src/kernels/mod.rs defines before this file in each
// module, so the compiler drops the other branch.
//
// Dequantization is llama.cpp's: d·q (Q8_0, q signed 8-bit) and d·q + m (Q4_1, q 4-bit), the
// product exact in f32, as in qmatmul.wgsl and the CPU reference.

@group(0) @binding(4) var<storage, read> b: array<u32>;

// Flat element index i of B -> the 4 elements i .. i+3 (i a multiple of 4: one quant word of
// one block, as 32 is a multiple of 4).
fn gemm_bq_run(i: u32) -> vec4<f32> {
    let blocks = p.n * p.k / 32u;
    let blk = i / 32u;
    let e = i % 32u;
    if (GEMM_BQ_Q4_1) {
        // Word w of a block holds elements 4w .. 4w+3 in its low nibbles and 16+4w .. 16+4w+3
        // in its high nibbles.
        let q = b[blk * 4u + (e % 16u) / 4u];
        let shift = select(0u, 4u, e >= 16u);
        let d = bitcast<f32>(b[4u * blocks + blk]);
        let m = bitcast<f32>(b[5u * blocks + blk]);
        let nib = vec4<f32>(vec4<u32>((q >> shift) & 15u, (q >> (8u + shift)) & 15u, (q >> (16u + shift)) & 15u, (q >> (24u + shift)) & 15u));
        return fma(vec4<f32>(d), nib, vec4<f32>(m));
    }
    let q = b[blk * 8u + e / 4u];
    let d = bitcast<f32>(b[8u * blocks + blk]);
    let s = vec4<i32>(bitcast<i32>(q << 24u) >> 24u, bitcast<i32>(q << 16u) >> 24u, bitcast<i32>(q << 8u) >> 24u, bitcast<i32>(q) >> 24u);
    return d * vec4<f32>(s);
}

// One element of B (the [k, n] entry points, whose runs along n may cross blocks).
fn gemm_bq_at(i: u32) -> f32 {
    return gemm_bq_run(i - i % 4u)[i % 4u];
}

// B[k][col .. col+3] (B stored [k, n]); zero outside B, as in gemm_b32.wgsl.
fn gemm_load_b_nn(base: u32, k: u32, col: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (k >= p.k) {
        return v;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (col + j < p.n) {
            v[j] = gemm_bq_at(base + k * p.n + col + j);
        }
    }
    return v;
}

// B[col][k .. k+3] (B stored [n, k], linear weights); k % 32 == 0 for quantized rows, so a
// run never leaves its block.
fn gemm_load_b_nt(base: u32, col: u32, k: u32) -> vec4<f32> {
    if (col >= p.n || k >= p.k) {
        return vec4<f32>(0.0);
    }
    return gemm_bq_run(base + col * p.k + k);
}

fn gemm_load_b_nn_fast(base: u32, k: u32, col: u32) -> vec4<f32> {
    return gemm_load_b_nn(base, k, col);
}

fn gemm_load_b_nt_fast(base: u32, col: u32, k: u32) -> vec4<f32> {
    return gemm_bq_run(base + col * p.k + k);
}
