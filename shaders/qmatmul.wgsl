// Quantized matmul for prefill: Y = act(X · Wᵀ + bias) with X [M, K] f32 (the batch flattened
// into rows) and W [N, K] in GGUF Q8_0 or Q4_1, repacked as in src/kernels/quant.rs (quants of
// all blocks, row-major, then the f32 d of every block, then for Q4_1 the f32 m).
//
// Tiled: a workgroup computes a 64 x 64 tile of Y, stepping along K by one quantization block
// (32). Each step stages the 64 x 32 slice of X and the 64 x 32 slice of W, dequantized, in
// workgroup memory (8 KiB each, 16 KiB in all: WebGPU's default limit), so W is dequantized
// tile by tile while it is used, never into a whole f32 copy. Dequantization is llama.cpp's:
// d·q, or d·q + m with one rounding (d·q is exact in f32).
//
// 256 invocations (16 x 16) per workgroup, each accumulating a 4 x 4 block of outputs whose
// rows and columns are 16 apart (ty + 16i, tx + 16j), so that neighbouring invocations read
// neighbouring workgroup-memory words. Tiles are numbered by row of tiles, then column, and the
// grid is 2-D (wrapped into y) so that more than 65535 tiles still launch.

struct Params {
    m: u32,          // rows of X and Y (all batch dimensions flattened)
    n: u32,          // rows of W = columns of Y
    k: u32,          // a multiple of 32 (graph builders check quantized widths)
    tiles_n: u32,    // tiles along a row of Y: ceil(n / 64)
    act: u32,        // ACT_* from activation.wgsl
    d_word: u32,     // u32 index of the first block scale d (after the quants)
    m_word: u32,     // Q4_1: u32 index of the first block min m
    groups_x: u32,   // workgroups along x of the (wrapped) grid
}

// BM and BN (the output tile) come from src/kernels/qmatmul.rs (wgsl_consts).
const BK: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// K % 32 == 0, so every row of X starts on a 16-byte boundary: X loads as vec4.
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> wq: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

// [BK][BM] and [BK][BN]: k-major, so the inner loop reads one row of each.
var<workgroup> x_tile: array<f32, BK * BM>;
var<workgroup> w_tile: array<f32, BK * BN>;

struct Tile {
    m0: u32,
    n0: u32,
    inside: bool,
}

fn tile_of(wid: vec3<u32>) -> Tile {
    let t = wid.y * p.groups_x + wid.x;
    let tiles_m = (p.m + BM - 1u) / BM;
    // The wrapped grid may have more workgroups than tiles (a partial last row of the grid).
    return Tile((t / p.tiles_n) * BM, (t % p.tiles_n) * BN, t < tiles_m * p.tiles_n);
}

// Stages X[m0 .. m0+64, k0 .. k0+32]: 512 vec4, two per invocation.
fn load_x(m0: u32, k0: u32, lid: u32) {
    for (var i = 0u; i < 2u; i = i + 1u) {
        let idx = lid + 256u * i;
        let r = idx / 8u;
        let c = (idx % 8u) * 4u;
        var v = vec4<f32>(0.0);
        // Rows past M (the bottom tile) read as zeros.
        if (m0 + r < p.m) {
            v = x4[((m0 + r) * p.k + k0 + c) / 4u];
        }
        for (var j = 0u; j < 4u; j = j + 1u) {
            x_tile[(c + j) * BM + r] = v[j];
        }
    }
}

// Signed byte `b` (0..3) of a word.
fn i8_at(v: u32, b: u32) -> f32 {
    return f32(bitcast<i32>(v << (24u - 8u * b)) >> 24u);
}

// Stages W[n0 .. n0+64, k0 .. k0+32] dequantized: one Q8_0 block per row, 8 quant words each,
// two words per invocation.
fn load_w_q8_0(n0: u32, k0: u32, lid: u32) {
    for (var i = 0u; i < 2u; i = i + 1u) {
        let idx = lid + 256u * i;
        let r = idx / 8u;
        let word = idx % 8u;
        // Rows past N (the right tile) are clamped to the last row; their columns are not stored.
        let row = min(n0 + r, p.n - 1u);
        let blk = row * (p.k / 32u) + k0 / 32u;
        let q = wq[blk * 8u + word];
        let d = bitcast<f32>(wq[p.d_word + blk]);
        for (var j = 0u; j < 4u; j = j + 1u) {
            w_tile[(word * 4u + j) * BN + r] = d * i8_at(q, j);
        }
    }
}

// The same for Q4_1: 4 quant words per block, one per invocation; word j holds elements
// 4j..4j+3 (low nibbles) and 16+4j..16+4j+3 (high nibbles).
fn load_w_q4_1(n0: u32, k0: u32, lid: u32) {
    let r = lid / 4u;
    let word = lid % 4u;
    let row = min(n0 + r, p.n - 1u);
    let blk = row * (p.k / 32u) + k0 / 32u;
    let q = wq[blk * 4u + word];
    let d = bitcast<f32>(wq[p.d_word + blk]);
    let m = bitcast<f32>(wq[p.m_word + blk]);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let lo = f32((q >> (8u * j)) & 15u);
        let hi = f32((q >> (8u * j + 4u)) & 15u);
        w_tile[(word * 4u + j) * BN + r] = d * lo + m;
        w_tile[(16u + word * 4u + j) * BN + r] = d * hi + m;
    }
}

// The tile's 4 x 4 outputs of this invocation, [i * 4 + j] = (ty + 16i, tx + 16j).
fn tile_product(t: Tile, lid: u32, q4_1: bool) -> array<f32, 16> {
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<f32, 16>;
    // Every invocation runs every step (the barriers need uniform control flow), also in
    // tiles past the end of a wrapped grid, whose loads are clamped and results dropped.
    for (var k0 = 0u; k0 < p.k; k0 = k0 + BK) {
        load_x(t.m0, k0, lid);
        if (q4_1) {
            load_w_q4_1(t.n0, k0, lid);
        } else {
            load_w_q8_0(t.n0, k0, lid);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk = kk + 1u) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a[i] = x_tile[kk * BM + ty + 16u * i];
                b[i] = w_tile[kk * BN + tx + 16u * i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i * 4u + j] = acc[i * 4u + j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    return acc;
}

// Writes the outputs that fall inside Y (bottom and right tiles stick out).
fn store(t: Tile, lid: u32, acc: array<f32, 16>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let row = t.m0 + lid / 16u + 16u * i;
            let col = t.n0 + lid % 16u + 16u * j;
            if (t.inside && row < p.m && col < p.n) {
                y[row * p.n + col] = activate(acc[i * 4u + j], p.act);
            }
        }
    }
}

fn store_bias(t: Tile, lid: u32, acc: array<f32, 16>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let row = t.m0 + lid / 16u + 16u * i;
            let col = t.n0 + lid % 16u + 16u * j;
            if (t.inside && row < p.m && col < p.n) {
                y[row * p.n + col] = activate(acc[i * 4u + j] + bias[col], p.act);
            }
        }
    }
}

// One entry point per dtype, with and without bias (reading `bias` needs it bound).

@compute @workgroup_size(256)
fn qmatmul_q8_0(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_of(wid);
    store(t, lid, tile_product(t, lid, false));
}

@compute @workgroup_size(256)
fn qmatmul_q8_0_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_of(wid);
    store_bias(t, lid, tile_product(t, lid, false));
}

@compute @workgroup_size(256)
fn qmatmul_q4_1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_of(wid);
    store(t, lid, tile_product(t, lid, true));
}

@compute @workgroup_size(256)
fn qmatmul_q4_1_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_of(wid);
    store_bias(t, lid, tile_product(t, lid, true));
}
