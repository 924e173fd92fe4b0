// Embedding gather: out[i, c] = table[ids[i], c] as f32, for a table [V, D] in f32, f16, Q8_0
// or Q4_1 (repacked as in src/kernels/quant.rs) and ids of any shape (flattened to [n]).
// An id >= V gives zeros: the GPU cannot raise an error, and a defined zero row is easier to
// notice and to test than whatever a clamped read would return.
//
// One invocation per output element, 256 per workgroup (the WebGPU default maximum), the grid
// wrapped into y beyond 65535 workgroups; consecutive invocations write consecutive elements
// of a row. The table is read as u32 words whatever its dtype (one binding type for all
// entry points): f32 by bitcast, f16 halves of a word widened by bit manipulation (exact,
// subnormals included, and needing neither SHADER_F16 nor unpack2x16float, which may flush
// subnormals and which naga gates behind a downlevel capability), quantized blocks by shifts. Dequantization is llama.cpp's, x = d·q
// and x = d·q + m, exact up to one rounding (d·q is exact in f32).

struct Params {
    len: u32,        // output elements: ids × D
    d: u32,          // row width D
    v: u32,          // table rows V
    d_word: u32,     // quantized tables: u32 index of the first block scale d
    m_word: u32,     // Q4_1: u32 index of the first block min m
    groups_x: u32,   // workgroups along x of the (wrapped) grid
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<u32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;

struct Element {
    index: u32,      // into dst
    flat: u32,       // into the table, as a flat element index
    valid: bool,     // inside dst and the id names a row of the table
    inside: bool,    // inside dst
}

fn element(wid: vec3<u32>, lid: u32) -> Element {
    let i = (wid.y * p.groups_x + wid.x) * 256u + lid;
    // The last workgroup (and the wrapped grid's last row) sticks out of the output.
    if (i >= p.len) {
        return Element(i, 0u, false, false);
    }
    let id = ids[i / p.d];
    // Out-of-range ids read nothing and write zero.
    return Element(i, id * p.d + i % p.d, id < p.v, true);
}

// The f16 bit pattern `h` (low 16 bits) as f32, exactly.
fn f16_to_f32(h: u32) -> f32 {
    let sign = select(1.0, -1.0, (h & 0x8000u) != 0u);
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 0u) {
        // Zero or subnormal: m · 2^-24 (exact in f32).
        return sign * f32(m) * 5.9604644775390625e-8;
    }
    if (e == 31u) {
        // Infinity or NaN: keep the payload in the top of the f32 mantissa.
        return bitcast<f32>(((h & 0x8000u) << 16u) | 0x7f800000u | (m << 13u));
    }
    // Normal: rebias the exponent from 15 to 127.
    return bitcast<f32>(((h & 0x8000u) << 16u) | ((e + 112u) << 23u) | (m << 13u));
}

@compute @workgroup_size(WG)
fn embedding_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = element(wid, lid);
    if (e.inside) {
        var v = 0.0;
        if (e.valid) {
            v = bitcast<f32>(table[e.flat]);
        }
        dst[e.index] = v;
    }
}

@compute @workgroup_size(WG)
fn embedding_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = element(wid, lid);
    if (e.inside) {
        var v = 0.0;
        if (e.valid) {
            // Element 2j is the low half of word j (little-endian).
            v = f16_to_f32(table[e.flat / 2u] >> (16u * (e.flat % 2u)));
        }
        dst[e.index] = v;
    }
}

@compute @workgroup_size(WG)
fn embedding_q8_0(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = element(wid, lid);
    if (e.inside) {
        var v = 0.0;
        if (e.valid) {
            let blk = e.flat / 32u;
            let j = e.flat % 32u;
            // Byte j of the block's 32 quant bytes (8 words), sign-extended.
            let word = table[blk * 8u + j / 4u];
            let q = bitcast<i32>(word << (24u - 8u * (j % 4u))) >> 24u;
            v = bitcast<f32>(table[p.d_word + blk]) * f32(q);
        }
        dst[e.index] = v;
    }
}

@compute @workgroup_size(WG)
fn embedding_q4_1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = element(wid, lid);
    if (e.inside) {
        var v = 0.0;
        if (e.valid) {
            let blk = e.flat / 32u;
            let j = e.flat % 32u;
            // Elements j and j + 16 share byte j % 16: low nibble, then high nibble.
            let byte_i = j % 16u;
            let word = table[blk * 4u + byte_i / 4u];
            let q = (word >> (8u * (byte_i % 4u) + 4u * (j / 16u))) & 15u;
            v = bitcast<f32>(table[p.d_word + blk]) * f32(q) + bitcast<f32>(table[p.m_word + blk]);
        }
        dst[e.index] = v;
    }
}
