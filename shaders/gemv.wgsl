// GEMV for decoding: y = act(x · Wᵀ + bias) for one row x [K] and a weight W [N, K] stored
// [out, in] (PyTorch and GGUF linear layout), in f32, Q8_0 or Q4_1 (f16 in gemv_f16.wgsl).
//
// One workgroup of WG = 64 invocations owns ROWS = 4 consecutive output rows. W is read in
// "units" (a vec4 of f32, or 16 bytes of quants = 16 Q8_0 or 32 Q4_1 elements), and invocation
// i takes units i, i + WG, i + 2·WG, ... of all ROWS rows: each x unit is loaded once and used
// ROWS times, and neighbouring invocations read neighbouring 16-byte words of a row
// (coalesced). The ROWS partial sums of all invocations are then added up: here by a tree in
// workgroup memory (portable), in gemv_subgroup.wgsl with subgroupAdd first.
//
// Why 64 x 4: 64 invocations are one AMD wave or two NVIDIA warps (and a whole number of
// subgroups of any size from 4 to 64); 4 rows amortise the x loads and the reduction while a
// 576-wide row still gives every invocation 2-3 f32 units. The workgroup grid is 2-D (wrapped
// into y, see grid_1d) so that N / 4 > 65535 workgroups (a 262k-row vocabulary) still launch.
//
// Dequantization is llama.cpp's (x = d·q for Q8_0, x = d·q + m for Q4_1, low nibbles are
// elements 0..15 of a block and high nibbles 16..31), one element at a time: d·q is exact in
// f32 (11-bit by 8-bit significands), so even a fused d·q + m rounds once, as on the CPU. The
// weights are the repacked planes of src/kernels/quant.rs: quants of all blocks (row-major),
// then the f32 d of every block, then (Q4_1) the f32 m, padded to 16 bytes.
//
// The loads of x and W go through ld_* functions (shaders/gemv_io.wgsl for the plain GEMV,
// gemv_fused.wgsl for the fused one, which scales x by an RMSNorm gain and reads the rows of a
// second weight), as do the row numbering of a workgroup (`group_rows`, `row_in_group`).
// Each row loop is written twice: rows 0..group_rows() read W, the rest (only the SwiGLU pair
// of the fused GEMV has any) read its second weight. The `up` argument of the loads is then a
// constant, so neither loop branches per row (lavapipe measured a branch there at 2x the time).
//
// Bindings alias by entry point (WGSL allows two variables at one binding as long as no entry
// point uses both): x is read as vec4 where K % 4 == 0 and as scalars otherwise, W as vec4<f32>,
// f32 or vec4<u32> words by dtype. Params and bindings are in gemv_head.wgsl.

// Partial sums of every invocation, row-major [ROWS][WG] (1 KiB); the subgroup reduction uses
// the first entries of each row for one partial per subgroup.
var<workgroup> red: array<f32, ROWS * WG>;
// Second level of the workgroup-memory reduction: SEG sums per row.
var<workgroup> red2: array<f32, WG>;

// First output row of this workgroup.
fn first_row(wid: vec3<u32>) -> u32 {
    return (wid.y * p.groups_x + wid.x) * group_rows();
}

// The W row read for output row `row0 + r`. The last workgroup may stick out of W (N not a
// multiple of ROWS), and a wrapped grid may have whole workgroups past the end: their rows
// are clamped to the last row so every load stays in bounds; `store` drops their results.
fn w_row(row0: u32, r: u32) -> u32 {
    return min(row0 + row_in_group(r), p.n - 1u);
}

// f32 W with K % 4 == 0: rows start on 16-byte boundaries, so both x and W load as vec4.
fn partial_f32x4(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    // u < units: the tail of the row when units is not a multiple of WG.
    for (var u = lid; u < p.units; u = u + WG) {
        let xv = ld_x4(u);
        for (var r = 0u; r < group_rows(); r = r + 1u) {
            acc[r] = acc[r] + dot(xv, ld_w4(false, w_row(row0, r) * p.units + u));
        }
        for (var r = group_rows(); r < ROWS; r = r + 1u) {
            acc[r] = acc[r] + dot(xv, ld_w4(true, w_row(row0, r) * p.units + u));
        }
    }
    return acc;
}

// f32 W with any K (rows not vec4-aligned): one element per unit.
fn partial_f32(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    for (var u = lid; u < p.units; u = u + WG) {
        let xv = ld_x(u);
        for (var r = 0u; r < group_rows(); r = r + 1u) {
            acc[r] = acc[r] + xv * ld_w(false, w_row(row0, r) * p.units + u);
        }
        for (var r = group_rows(); r < ROWS; r = r + 1u) {
            acc[r] = acc[r] + xv * ld_w(true, w_row(row0, r) * p.units + u);
        }
    }
    return acc;
}

// Four signed bytes (element order = byte order, little-endian) as f32.
fn i8x4(v: u32) -> vec4<f32> {
    let shifted = vec4<u32>(v << 24u, v << 16u, v << 8u, v);
    return vec4<f32>(bitcast<vec4<i32>>(shifted) >> vec4<u32>(24u));
}

// Q8_0: a unit is half a block (16 quants, one vec4<u32>); x elements 16u .. 16u + 15.
fn partial_q8_0(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    for (var u = lid; u < p.units; u = u + WG) {
        let x0 = ld_x4(4u * u);
        let x1 = ld_x4(4u * u + 1u);
        let x2 = ld_x4(4u * u + 2u);
        let x3 = ld_x4(4u * u + 3u);
        for (var r = 0u; r < group_rows(); r = r + 1u) {
            let unit = w_row(row0, r) * p.units + u;
            let q = ld_wq(false, unit);
            let d = ld_plane(false, p.d_word + unit / 2u);
            acc[r] = acc[r] + dot(x0, i8x4(q.x) * d) + dot(x1, i8x4(q.y) * d)
                            + dot(x2, i8x4(q.z) * d) + dot(x3, i8x4(q.w) * d);
        }
        for (var r = group_rows(); r < ROWS; r = r + 1u) {
            let unit = w_row(row0, r) * p.units + u;
            let q = ld_wq(true, unit);
            let d = ld_plane(true, p.d_word + unit / 2u);
            acc[r] = acc[r] + dot(x0, i8x4(q.x) * d) + dot(x1, i8x4(q.y) * d)
                            + dot(x2, i8x4(q.z) * d) + dot(x3, i8x4(q.w) * d);
        }
    }
    return acc;
}

// The low and high nibbles of four bytes, as f32 (element order = byte order).
fn lo4(v: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u)) & vec4<u32>(15u));
}

fn hi4(v: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(v >> 4u, v >> 12u, v >> 20u, v >> 28u)) & vec4<u32>(15u));
}

// Q4_1: a unit is one block (16 bytes of nibbles, one vec4<u32>); word j holds elements
// 4j..4j+3 in its low nibbles and 16+4j..16+4j+3 in its high nibbles.
fn partial_q4_1(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    for (var u = lid; u < p.units; u = u + WG) {
        var xs: array<vec4<f32>, 8>;
        for (var j = 0u; j < 8u; j = j + 1u) {
            xs[j] = ld_x4(8u * u + j);
        }
        for (var r = 0u; r < group_rows(); r = r + 1u) {
            let blk = w_row(row0, r) * p.units + u;
            let q = ld_wq(false, blk);
            let d = ld_plane(false, p.d_word + blk);
            let m = ld_plane(false, p.m_word + blk);
            var s = 0.0;
            for (var j = 0u; j < 4u; j = j + 1u) {
                s = s + dot(xs[j], lo4(q[j]) * d + m) + dot(xs[4u + j], hi4(q[j]) * d + m);
            }
            acc[r] = acc[r] + s;
        }
        for (var r = group_rows(); r < ROWS; r = r + 1u) {
            let blk = w_row(row0, r) * p.units + u;
            let q = ld_wq(true, blk);
            let d = ld_plane(true, p.d_word + blk);
            let m = ld_plane(true, p.m_word + blk);
            var s = 0.0;
            for (var j = 0u; j < 4u; j = j + 1u) {
                s = s + dot(xs[j], lo4(q[j]) * d + m) + dot(xs[4u + j], hi4(q[j]) * d + m);
            }
            acc[r] = acc[r] + s;
        }
    }
    return acc;
}

// Reduction in workgroup memory, in two levels with two barriers (a full binary tree would
// take log2(WG) = 6, and barriers are what a small kernel pays for): all WG·ROWS partials are
// written, then SEG = WG / ROWS invocations per row each add WG / SEG of them, then
// invocation r < ROWS adds the SEG sums of row r. Returns row `lid`'s total to lid < ROWS.
const SEG: u32 = WG / ROWS;

fn reduce_shared(acc: array<f32, ROWS>, lid: u32) -> f32 {
    for (var r = 0u; r < ROWS; r = r + 1u) {
        red[r * WG + lid] = acc[r];
    }
    workgroupBarrier();
    // Invocation lid adds entries [s·ROWS, s·ROWS + ROWS) of row r = lid / SEG (s = lid % SEG).
    let r = lid / SEG;
    let s = lid % SEG;
    var part = 0.0;
    for (var i = 0u; i < WG / SEG; i = i + 1u) {
        part = part + red[r * WG + s * (WG / SEG) + i];
    }
    red2[lid] = part;
    workgroupBarrier();
    var total = 0.0;
    // Only invocations 0..ROWS-1 hold a total; the others' result is unused.
    if (lid < ROWS) {
        for (var i = 0u; i < SEG; i = i + 1u) {
            total = total + red2[lid * SEG + i];
        }
    }
    return total;
}

// Invocations 0..ROWS-1 hold the totals. Rows past N (last workgroup) are not written.
fn store(row0: u32, lid: u32, total: f32) {
    if (lid < ROWS && row0 + lid < p.n) {
        y[row0 + lid] = activate(total, p.act);
    }
}

fn store_bias(row0: u32, lid: u32, total: f32) {
    if (lid < ROWS && row0 + lid < p.n) {
        y[row0 + lid] = activate(total + bias[row0 + lid], p.act);
    }
}

// Entry points: one per W layout, with and without bias (an entry point that reads `bias` at
// all needs it bound, and a GEMV without bias has nothing to bind).

@compute @workgroup_size(WG)
fn gemv_f32x4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_shared(partial_f32x4(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_f32x4_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_shared(partial_f32x4(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_shared(partial_f32(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_f32_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_shared(partial_f32(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_q8_0(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_shared(partial_q8_0(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_q8_0_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_shared(partial_q8_0(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_q4_1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_shared(partial_q4_1(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_q4_1_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_shared(partial_q4_1(row0, lid), lid));
}
