// Softmax over the last dimension, numerically stable:
//   y[j] = exp(s[j] - max s) / sum_k exp(s[k] - max s),   s = scale * x
// with optional masks, as attention scores need them: causal (key j > query i + offset is
// masked, i being the row's index within its matrix, i.e. along the second-to-last dimension)
// and a per-key padding mask (mask[j] == 0 masks key j; u32, or f32 where 0.0 and -0.0 mask).
// Masked keys get probability exactly 0. A row whose keys are all masked is all zeros: there is
// nothing to attend to, and zeros keep the following matmul finite (rather than 0/0 = NaN).
//
// One workgroup of 64 invocations per row. Each invocation strides over the row (so any row
// length works, from 1 up) and the reductions (max, then sum) go through workgroup memory.
// 64 is a multiple of every subgroup size we meet (8 on lavapipe, 32 on NVIDIA, 64 on AMD) and
// wastes little on short rows; long rows give each invocation n/64 elements. Rows are numbered
// on a 2-D grid (wrapping into y) so that more than 65535 rows still launch.
//
// The row is processed in two steps. The entry point (one with the mask binding, one without:
// a shader that reads `mask` at all needs the binding in its layout) writes the scaled scores
// into the output row with masked keys marked by MASKED; `normalize` then turns the row into
// probabilities. Each invocation only ever reads back the elements it wrote itself (same
// stride), so no barrier is needed between the steps, only inside the reductions.

struct Params {
    rows: u32,            // rows in the tensor (product of all dimensions but the last)
    n: u32,               // row length
    rows_per_matrix: u32, // the causal query index i is row % rows_per_matrix
    causal: u32,          // 1: mask key j when j > i + offset
    offset: u32,
    scale: f32,
    mask_f32: u32,        // 1: the mask holds f32 bits (0.0 and -0.0 mask), else u32 (0 masks)
}

// WG comes from src/kernels/softmax.rs (wgsl_consts).
// Marks a masked key in the output row between the two steps. Scores are clamped to
// [-BIG, BIG] first, so no real score equals it (and an overflowing dot product, +-inf,
// becomes a large finite score instead of making inf - inf = NaN later).
// The lowest f32 exactly (-3.4028235e38 rounds past it, which browsers' WGSL compilers refuse).
const MASKED: f32 = -3.4028234663852886e38;
const BIG: f32 = 3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;

var<workgroup> red: array<f32, WG>;

// Tree reduction over the workgroup; every invocation gets the result. The trailing barrier
// makes sure all have read red[0] before a following reduction overwrites it.
fn reduce(v: f32, lid: u32, is_max: bool) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = select(red[lid] + red[lid + s], max(red[lid], red[lid + s]), is_max);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// The scaled, clamped score of element j of `row`, or MASKED when causally masked.
fn score(row: u32, j: u32) -> f32 {
    let i = row % p.rows_per_matrix;
    if (p.causal == 1u && j > i + p.offset) {
        return MASKED;
    }
    return clamp(p.scale * x[row * p.n + j], -BIG, BIG);
}

fn normalize(row: u32, lid: u32) {
    let base = row * p.n;
    var m = MASKED;
    for (var j = lid; j < p.n; j = j + WG) {
        m = max(m, y[base + j]);
    }
    m = reduce(m, lid, true);
    var sum = 0.0;
    for (var j = lid; j < p.n; j = j + WG) {
        let s = y[base + j];
        // select, not multiplication: masked entries must not contribute even as 0 * inf.
        let e = select(exp(s - m), 0.0, s == MASKED);
        y[base + j] = e;
        sum = sum + e;
    }
    sum = reduce(sum, lid, false);
    // All keys masked: sum is 0 and every e is 0; write zeros rather than 0/0.
    let inv = select(1.0 / sum, 0.0, sum == 0.0);
    for (var j = lid; j < p.n; j = j + WG) {
        y[base + j] = y[base + j] * inv;
    }
}

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, nwg);
    // The wrapped grid may hold more workgroups than rows (a partial last row of groups).
    // `row` is the same for the whole workgroup, so returning keeps the barriers uniform.
    if (row >= p.rows) { return; }
    for (var j = lid; j < p.n; j = j + WG) {
        y[row * p.n + j] = score(row, j);
    }
    normalize(row, lid);
}

fn key_kept(j: u32) -> bool {
    let bits = mask[j];
    if (p.mask_f32 == 1u) {
        return (bits & 0x7fffffffu) != 0u;
    }
    return bits != 0u;
}

@compute @workgroup_size(WG)
fn softmax_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, nwg);
    if (row >= p.rows) { return; }
    for (var j = lid; j < p.n; j = j + WG) {
        // The mask has one entry per key (shape [n]), shared by every row.
        y[row * p.n + j] = select(MASKED, score(row, j), key_kept(j));
    }
    normalize(row, lid);
}
