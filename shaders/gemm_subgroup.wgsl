// GEMM for adapters that run shaders on CPU cores (lavapipe/llvmpipe, SwiftShader), built on
// subgroup broadcasts instead of workgroup memory. Needs the SUBGROUP feature (modules of their
// own, created only on adapters that have it) and subgroups of at least 8 invocations. Takes B
// through gemm_b32.wgsl (this family) or gemm_b16.wgsl (family gemm_f16_subgroup).
//
// Why a separate kernel: a CPU driver runs a subgroup as one SIMD program whose lanes are the
// invocations. A load whose address differs per lane (every load from storage or workgroup
// memory, as far as the driver can tell) becomes a loop over the lanes, while a broadcast is
// one register shuffle; and a workgroup barrier turns the whole shader into a coroutine that
// is suspended and resumed per subgroup. So here nothing is shared through workgroup memory
// and there is no barrier: each lane loads one vec4 of A per row and 32 k-steps, and the 8
// lanes broadcast those values to each other.
//
// Workgroup size 8 = one subgroup, of any size from 8 up: a wider subgroup (16, 32, 64) holds
// the workgroup as lanes 0..7, the broadcast sources, with its other lanes inactive. Subgroups
// narrower than 8 would split the workgroup, so the host never uses this kernel where the
// adapter may run them (kernels::gemm::subgroup_sizes_fit). Lane `lane` loads k-slice `lane`
// and the broadcast from lane s yields slice s, whichever invocation that lane is. The
// workgroup computes a 16 x 32 tile of C, invocation `li` its columns col0 + 4 li .. +3 of
// all 16 rows (a register block of 16 x 4: 16 vec4 accumulators). Per 32 k-steps, lane `lane`
// loads A[row][k0 + 4 lane .. +3] for the 16 rows; the B values of its own 4 columns are read
// straight from B (each is used by this invocation only).

const SG_ROWS: u32 = 16u;   // rows of C per workgroup (and accumulators per invocation)
const SG_COLS: u32 = 32u;   // columns of C per workgroup: 8 invocations x 4
const SG_K: u32 = 32u;      // k-steps per load of A: 8 lanes x 4

// One group of 4 k-steps: acc[r] += A[r][k .. k+3] · B[k .. k+3][cols], for this invocation's
// 4 columns, with ab[r] = A[r][k .. k+3] as broadcast from the lane that loaded it. `fast`
// (constant per call site) picks the unchecked loads: then the columns are clamped into B, so
// edge tiles read real elements whose products are dropped by gemm_store.
fn sg_step(acc: ptr<function, array<vec4<f32>, 16>>, ab: ptr<function, array<vec4<f32>, 16>>,
           bbase: u32, k: u32, col: u32, trans_b: bool, fast: bool) {
    var b0: vec4<f32>;
    var b1: vec4<f32>;
    var b2: vec4<f32>;
    var b3: vec4<f32>;
    if (trans_b) {
        // B stored [n, k]: column j of this invocation is the run B[col + j][k .. k+3].
        if (fast) {
            b0 = gemm_load_b_nt_fast(bbase, min(col, p.n - 1u), k);
            b1 = gemm_load_b_nt_fast(bbase, min(col + 1u, p.n - 1u), k);
            b2 = gemm_load_b_nt_fast(bbase, min(col + 2u, p.n - 1u), k);
            b3 = gemm_load_b_nt_fast(bbase, min(col + 3u, p.n - 1u), k);
        } else {
            b0 = gemm_load_b_nt(bbase, col, k);
            b1 = gemm_load_b_nt(bbase, col + 1u, k);
            b2 = gemm_load_b_nt(bbase, col + 2u, k);
            b3 = gemm_load_b_nt(bbase, col + 3u, k);
        }
        for (var r = 0u; r < SG_ROWS; r = r + 1u) {
            let av = (*ab)[r];
            (*acc)[r] = (*acc)[r] + vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3));
        }
    } else {
        // B stored [k, n]: row k + q of B holds this invocation's 4 columns as one run.
        if (fast) {
            // vec_b: n is a multiple of 4 (so at least 4) and col a multiple of 4.
            let cf = min(col, p.n - 4u);
            b0 = gemm_load_b_nn_fast(bbase, k, cf);
            b1 = gemm_load_b_nn_fast(bbase, k + 1u, cf);
            b2 = gemm_load_b_nn_fast(bbase, k + 2u, cf);
            b3 = gemm_load_b_nn_fast(bbase, k + 3u, cf);
        } else {
            b0 = gemm_load_b_nn(bbase, k, col);
            b1 = gemm_load_b_nn(bbase, k + 1u, col);
            b2 = gemm_load_b_nn(bbase, k + 2u, col);
            b3 = gemm_load_b_nn(bbase, k + 3u, col);
        }
        for (var r = 0u; r < SG_ROWS; r = r + 1u) {
            let av = (*ab)[r];
            (*acc)[r] = fma(vec4<f32>(av.w), b3, fma(vec4<f32>(av.z), b2, fma(vec4<f32>(av.y), b1, fma(vec4<f32>(av.x), b0, (*acc)[r]))));
        }
    }
}

// SG_K k-steps from k0: each lane loads A[row][k0 + 4 lane .. +3] for the 16 rows, then the
// eight spelled-out steps broadcast lane s's values (subgroupBroadcast needs a constant lane).
// Every invocation of the workgroup runs this (no early exit before it), as broadcasts require.
fn sg_chunk(acc: ptr<function, array<vec4<f32>, 16>>, t: GemmTile, abase: u32, bbase: u32, k0: u32,
            col: u32, lane: u32, trans_b: bool, fast: bool) {
    var ar: array<vec4<f32>, 16>;
    var ab: array<vec4<f32>, 16>;
    for (var r = 0u; r < SG_ROWS; r = r + 1u) {
        if (fast) {
            // Rows past m (bottom edge tiles) repeat the last row; their results are dropped.
            ar[r] = gemm_load_a_fast(abase, min(t.row0 + r, p.m - 1u), k0 + 4u * lane);
        } else {
            ar[r] = gemm_load_a(abase, t.row0 + r, k0 + 4u * lane);
        }
    }
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 0u); }
    sg_step(acc, &ab, bbase, k0, col, trans_b, fast);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 1u); }
    sg_step(acc, &ab, bbase, k0 + 4u, col, trans_b, fast);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 2u); }
    sg_step(acc, &ab, bbase, k0 + 8u, col, trans_b, fast);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 3u); }
    sg_step(acc, &ab, bbase, k0 + 12u, col, trans_b, fast);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 4u); }
    sg_step(acc, &ab, bbase, k0 + 16u, col, trans_b, fast);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 5u); }
    sg_step(acc, &ab, bbase, k0 + 20u, col, trans_b, fast);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 6u); }
    sg_step(acc, &ab, bbase, k0 + 24u, col, trans_b, fast);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) { ab[r] = subgroupBroadcast(ar[r], 7u); }
    sg_step(acc, &ab, bbase, k0 + 28u, col, trans_b, fast);
}

// The accumulators of one invocation: rows row0 .. row0+15, columns col .. col+3. Whole
// SG_K-chunks of aligned tensors (vec_a and vec_b) take the unchecked loads; the rest (the
// last partial chunk, or every chunk of unaligned tensors) the bounds-checked ones. Two loops
// rather than a branch per chunk, so each loop body is compiled for one case.
fn sg_product(t: GemmTile, li: u32, lane: u32, trans_b: bool) -> array<vec4<f32>, 16> {
    var acc: array<vec4<f32>, 16>;
    let abase = t.batch * p.stride_a;
    let bbase = t.batch * p.stride_b;
    let col = t.col0 + 4u * li;
    let full = select(0u, p.k - p.k % SG_K, p.vec_a == 1u && p.vec_b == 1u);
    var k0 = 0u;
    for (; k0 < full; k0 = k0 + SG_K) {
        sg_chunk(&acc, t, abase, bbase, k0, col, lane, trans_b, true);
    }
    for (; k0 < p.k; k0 = k0 + SG_K) {
        sg_chunk(&acc, t, abase, bbase, k0, col, lane, trans_b, false);
    }
    return acc;
}

// Entry points: {B [k, n], B [n, k]} x {no bias, bias}. The grid has one workgroup per tile
// (wrapped into y past 65535); workgroups past the last tile return at once, as a whole, so
// the broadcasts of the others stay in uniform control flow.
@compute @workgroup_size(8)
fn gemm_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let t = gemm_tile(wid, nwg, SG_ROWS, SG_COLS);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = sg_product(t, li, lane, false);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            gemm_store(t.batch, t.row0 + r, t.col0 + 4u * li + j, acc[r][j]);
        }
    }
}

@compute @workgroup_size(8)
fn gemm_nn_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let t = gemm_tile(wid, nwg, SG_ROWS, SG_COLS);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = sg_product(t, li, lane, false);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            gemm_store_bias(t.batch, t.row0 + r, t.col0 + 4u * li + j, acc[r][j]);
        }
    }
}

@compute @workgroup_size(8)
fn gemm_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let t = gemm_tile(wid, nwg, SG_ROWS, SG_COLS);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = sg_product(t, li, lane, true);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            gemm_store(t.batch, t.row0 + r, t.col0 + 4u * li + j, acc[r][j]);
        }
    }
}

@compute @workgroup_size(8)
fn gemm_nt_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let t = gemm_tile(wid, nwg, SG_ROWS, SG_COLS);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = sg_product(t, li, lane, true);
    for (var r = 0u; r < SG_ROWS; r = r + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            gemm_store_bias(t.batch, t.row0 + r, t.col0 + 4u * li + j, acc[r][j]);
        }
    }
}
