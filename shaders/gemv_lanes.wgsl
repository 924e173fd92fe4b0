// The GEMV for adapters that run shaders on CPU cores (lavapipe/llvmpipe, SwiftShader): y =
// x · Wᵀ with the fused GEMV's options (bias, activation, residual, SwiGLU pair, RMSNorm
// prologue; see gemv_fused.wgsl for their meaning), for Q4_1, Q8_0 and f32 W with K a multiple
// of 32. Params and the W, x, y and bias bindings are gemv_head.wgsl's; FUSED_SWIGLU and
// FUSED_RMS are the module's constants (kernels::gemv::SPEC_*), bias and residual bits of
// p.flags, as in the fused GEMV.
//
// Why a kernel of its own (measured on llvmpipe, BENCHMARKS.md "GEMV on CPU adapters"): such
// a driver runs a subgroup as one SIMD program whose lanes are the invocations. A storage load
// becomes a loop over the lanes (about as costly per 32-bit component whatever the address),
// a subgroup broadcast is one register shuffle, and a workgroup barrier makes the shader a
// coroutine that is suspended and resumed per subgroup (about 3 us per workgroup of the tree
// reduction there, more than the loads of a 576-wide row). So here:
//   - a workgroup is one subgroup of 8 lanes and has no barrier and no workgroup memory;
//   - lane l owns output rows row0 + l + 8·r (r < LR): no reduction at all;
//   - per 32-element block of the row, lane l loads x[32u + 4l .. +3] (one vec4), and eight
//     broadcasts give every lane the whole block: one load of x per lane per block, shared by
//     its LR rows (and their up rows), instead of one per element;
//   - the loops run in uniform control flow (lanes past the last row compute a copy of it and
//     do not store), as broadcasts need.
// Subgroups must have at least 8 lanes (lanes 0..7 are the broadcast sources; a wider
// subgroup holds the workgroup in its first 8 lanes); the host checks
// (kernels::gemm::subgroup_sizes_fit). On a GPU this layout would read W uncoalesced (lanes
// 432 bytes apart), so GPUs keep gemv.wgsl's kernels.
enable subgroups;

// Output rows per lane.
const LR: u32 = 4u;
// Lanes of a workgroup.
const LANES: u32 = 8u;

@group(0) @binding(6) var<storage, read> wuq: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> gain4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> res: array<f32>;

fn flag(bit: u32) -> bool {
    return (p.flags & bit) != 0u;
}

// The eight lanes' vec4 values, in every lane.
fn bc8(v: vec4<f32>) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(
        subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u),
        subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}

// Four signed bytes (element order = byte order) as f32, and the low / high nibbles of four
// bytes, as in gemv.wgsl.
fn i8x4(v: u32) -> vec4<f32> {
    let shifted = vec4<u32>(v << 24u, v << 16u, v << 8u, v);
    return vec4<f32>(bitcast<vec4<i32>>(shifted) >> vec4<u32>(24u));
}

fn lo4(v: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u)) & vec4<u32>(15u));
}

fn hi4(v: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(v >> 4u, v >> 12u, v >> 20u, v >> 28u)) & vec4<u32>(15u));
}

// A scale plane entry (f32 bits) of W or of the up weight.
fn plane_of(up: bool, word: u32) -> f32 {
    if (up) {
        return bitcast<f32>(wuq[word >> 2u][word & 3u]);
    }
    return bitcast<f32>(wq[word >> 2u][word & 3u]);
}

fn quants(up: bool, unit: u32) -> vec4<u32> {
    if (up) {
        return wuq[unit];
    }
    return wq[unit];
}

// f32 W goes through the same vec4<u32> view as quants: an entry point may use one view of a
// binding only, and the block functions share call paths.
fn floats(up: bool, unit: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(quants(up, unit));
}

// Block `b` (32 elements) of W row `row` (or the up weight's) times the block's x, per layout.
// Dequantization is gemv.wgsl's, element by element.
fn block_q4_1(up: bool, row: u32, b: u32, xs: array<vec4<f32>, 8>) -> f32 {
    let blk = row * p.units + b;
    let q = quants(up, blk);
    let d = plane_of(up, p.d_word + blk);
    let m = plane_of(up, p.m_word + blk);
    return dot(xs[0], lo4(q.x) * d + m) + dot(xs[4], hi4(q.x) * d + m)
         + dot(xs[1], lo4(q.y) * d + m) + dot(xs[5], hi4(q.y) * d + m)
         + dot(xs[2], lo4(q.z) * d + m) + dot(xs[6], hi4(q.z) * d + m)
         + dot(xs[3], lo4(q.w) * d + m) + dot(xs[7], hi4(q.w) * d + m);
}

fn block_q8_0(up: bool, row: u32, b: u32, xs: array<vec4<f32>, 8>) -> f32 {
    // A Q8_0 block is two units of 16 quants; p.units counts units.
    let unit = row * p.units + 2u * b;
    let q0 = quants(up, unit);
    let q1 = quants(up, unit + 1u);
    let d = plane_of(up, p.d_word + unit / 2u);
    return dot(xs[0], i8x4(q0.x) * d) + dot(xs[1], i8x4(q0.y) * d)
         + dot(xs[2], i8x4(q0.z) * d) + dot(xs[3], i8x4(q0.w) * d)
         + dot(xs[4], i8x4(q1.x) * d) + dot(xs[5], i8x4(q1.y) * d)
         + dot(xs[6], i8x4(q1.z) * d) + dot(xs[7], i8x4(q1.w) * d);
}

fn block_f32x4(up: bool, row: u32, b: u32, xs: array<vec4<f32>, 8>) -> f32 {
    // p.units counts vec4 of the row; a block is 8 of them.
    let unit = row * p.units + 8u * b;
    var s = 0.0;
    for (var j = 0u; j < 8u; j++) {
        s += dot(xs[j], floats(up, unit + j));
    }
    return s;
}

fn block(kind: u32, up: bool, row: u32, b: u32, xs: array<vec4<f32>, 8>) -> f32 {
    if (kind == KIND_Q4_1) {
        return block_q4_1(up, row, b, xs);
    } else if (kind == KIND_Q8_0) {
        return block_q8_0(up, row, b, xs);
    }
    return block_f32x4(up, row, b, xs);
}

const KIND_F32X4: u32 = 0u;
const KIND_Q8_0: u32 = 1u;
const KIND_Q4_1: u32 = 2u;

// The dot products of this lane's LR rows (acc) and, with FUSED_SWIGLU, of the same rows of
// the up weight (accu), and Σx² of the row (FUSED_RMS) in every lane. `kind` is a constant at
// each call site, so the branches of `block` fold away.
struct Sums {
    acc: array<f32, LR>,
    accu: array<f32, LR>,
    sumsq: f32,
}

fn sums(kind: u32, rows: array<u32, LR>, lane: u32) -> Sums {
    var s: Sums;
    var sq = 0.0;
    let blocks = p.k / 32u;
    for (var b = 0u; b < blocks; b++) {
        var xv = x4[8u * b + lane];
        if (FUSED_RMS) {
            sq += dot(xv, xv);
            xv *= gain4[8u * b + lane];
        }
        let xs = bc8(xv);
        for (var r = 0u; r < LR; r++) {
            s.acc[r] += block(kind, false, rows[r], b, xs);
        }
        if (FUSED_SWIGLU) {
            for (var r = 0u; r < LR; r++) {
                s.accu[r] += block(kind, true, rows[r], b, xs);
            }
        }
    }
    if (FUSED_RMS) {
        s.sumsq = subgroupAdd(sq);
    }
    return s;
}

fn lanes_gemv(kind: u32, wid: vec3<u32>, lane: u32) {
    let row0 = (wid.y * p.groups_x + wid.x) * (LANES * LR) + lane;
    var rows: array<u32, LR>;
    for (var r = 0u; r < LR; r++) {
        rows[r] = min(row0 + LANES * r, p.n - 1u);
    }
    let s = sums(kind, rows, lane);
    var scale = 1.0;
    if (FUSED_RMS) {
        scale = inverseSqrt(s.sumsq / f32(p.k) + p.eps);
    }
    for (var r = 0u; r < LR; r++) {
        let row = row0 + LANES * r;
        if (row >= p.n) {
            continue;
        }
        var v = s.acc[r] * scale;
        if (FUSED_SWIGLU) {
            v = silu_f(v) * (s.accu[r] * scale);
        } else {
            if (flag(FUSE_BIAS)) {
                v += bias[row];
            }
            v = activate(v, p.act);
        }
        if (flag(FUSE_RESIDUAL)) {
            v += res[row];
        }
        y[row] = v;
    }
}

@compute @workgroup_size(LANES)
fn gemv_lanes_q4_1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
    lanes_gemv(KIND_Q4_1, wid, lane);
}

@compute @workgroup_size(LANES)
fn gemv_lanes_q8_0(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
    lanes_gemv(KIND_Q8_0, wid, lane);
}

@compute @workgroup_size(LANES)
fn gemv_lanes_f32x4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
    lanes_gemv(KIND_F32X4, wid, lane);
}
