// Tiled GEMM: the default matmul kernel on GPUs (and wherever gemm_subgroup does not apply).
// Builds on gemm_common.wgsl and takes B through gemm_load_b_nn / gemm_load_b_nt: f32 B from
// gemm_b32.wgsl in this family, f16 B from gemm_b16.wgsl in family gemm_f16, which reuses
// this file.
//
// A workgroup of 16 x 8 = 128 invocations computes a 64 x 128 tile of C; each invocation an
// 8 x 8 register block (16 vec4 accumulators): rows ty + 8 i (i < 8) and, with B [k, n], the
// column groups 4 (tx + 16 j) .. +3 (j < 2), or with B [n, k] the columns tx + 16 j (j < 8).
// Strided rather than contiguous blocks, so that neighbouring invocations read neighbouring
// workgroup-memory words. Per 16 k-steps the workgroup copies a 64 x 16 slice of A and a 16 x 128
// slice of B into workgroup memory as vec4 (2 + 4 loads per invocation), then every invocation
// runs its 8 x 8 x 16 multiply-adds from there. 128 invocations and 5 + 8 (or 10) KiB of workgroup
// memory stay inside WebGPU's default limits (256 invocations, 16 KiB).

const TILE_M: u32 = 64u;
const TILE_N: u32 = 128u;
const TILE_K: u32 = 16u;
const TILE_THREADS: u32 = 128u;
// Row stride of the k-major slices in vec4: 4 vec4 of k plus one of padding, so that the
// invocations reading different rows in the same step hit different memory banks.
const TILE_KPAD: u32 = 5u;

// A slice: tile_a[row * 5 + q] = A[row0 + row][k0 + 4 q .. +3].
var<workgroup> tile_a: array<vec4<f32>, 320>;
// B slice for B [k, n]: tile_b[kk * 32 + q] = B[k0 + kk][col0 + 4 q .. +3].
var<workgroup> tile_b: array<vec4<f32>, 512>;
// B slice for B [n, k]: tile_bt[col * 5 + q] = B[col0 + col][k0 + 4 q .. +3].
var<workgroup> tile_bt: array<vec4<f32>, 640>;

fn tile_load_a(li: u32, abase: u32, row0: u32, k0: u32) {
    // 64 rows x 4 vec4 = 256 vec4: two per invocation.
    for (var s = 0u; s < 2u; s = s + 1u) {
        let i = li + TILE_THREADS * s;
        tile_a[(i / 4u) * TILE_KPAD + i % 4u] = gemm_load_a(abase, row0 + i / 4u, k0 + 4u * (i % 4u));
    }
}

// The 8 x 8 register block of invocation (tx, ty) over one 16-deep slice, B [k, n]. The B
// values are named rather than kept in an array: some compilers (llvmpipe's) leave small
// dynamically indexed arrays in memory instead of registers.
fn tile_mul_nn(acc: ptr<function, array<vec4<f32>, 16>>, tx: u32, ty: u32) {
    for (var q = 0u; q < 4u; q = q + 1u) {
        // B rows k0 + 4q + r, this invocation's column groups j = 0, 1.
        let b00 = tile_b[(4u * q) * 32u + tx];
        let b01 = tile_b[(4u * q) * 32u + tx + 16u];
        let b10 = tile_b[(4u * q + 1u) * 32u + tx];
        let b11 = tile_b[(4u * q + 1u) * 32u + tx + 16u];
        let b20 = tile_b[(4u * q + 2u) * 32u + tx];
        let b21 = tile_b[(4u * q + 2u) * 32u + tx + 16u];
        let b30 = tile_b[(4u * q + 3u) * 32u + tx];
        let b31 = tile_b[(4u * q + 3u) * 32u + tx + 16u];
        for (var i = 0u; i < 8u; i = i + 1u) {
            let av = tile_a[(ty + 8u * i) * TILE_KPAD + q];
            let x = vec4<f32>(av.x);
            let y = vec4<f32>(av.y);
            let z = vec4<f32>(av.z);
            let w = vec4<f32>(av.w);
            (*acc)[2u * i] = fma(w, b30, fma(z, b20, fma(y, b10, fma(x, b00, (*acc)[2u * i]))));
            (*acc)[2u * i + 1u] = fma(w, b31, fma(z, b21, fma(y, b11, fma(x, b01, (*acc)[2u * i + 1u]))));
        }
    }
}

// Same for B [n, k]: both slices are k-major, so each term is a dot product of two vec4.
fn tile_mul_nt(acc: ptr<function, array<vec4<f32>, 16>>, tx: u32, ty: u32) {
    for (var q = 0u; q < 4u; q = q + 1u) {
        // Columns tx + 16 j of the tile, k0 + 4q .. +3.
        let b0 = tile_bt[tx * TILE_KPAD + q];
        let b1 = tile_bt[(tx + 16u) * TILE_KPAD + q];
        let b2 = tile_bt[(tx + 32u) * TILE_KPAD + q];
        let b3 = tile_bt[(tx + 48u) * TILE_KPAD + q];
        let b4 = tile_bt[(tx + 64u) * TILE_KPAD + q];
        let b5 = tile_bt[(tx + 80u) * TILE_KPAD + q];
        let b6 = tile_bt[(tx + 96u) * TILE_KPAD + q];
        let b7 = tile_bt[(tx + 112u) * TILE_KPAD + q];
        for (var i = 0u; i < 8u; i = i + 1u) {
            let av = tile_a[(ty + 8u * i) * TILE_KPAD + q];
            (*acc)[2u * i] = (*acc)[2u * i] + vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3));
            (*acc)[2u * i + 1u] = (*acc)[2u * i + 1u] + vec4<f32>(dot(av, b4), dot(av, b5), dot(av, b6), dot(av, b7));
        }
    }
}

// The register block of one invocation, B [k, n]. The barriers sit in uniform control flow:
// every invocation of a workgroup runs the same number of k-steps (or the whole workgroup
// returned before calling this).
fn tile_product_nn(t: GemmTile, lid: vec3<u32>, li: u32) -> array<vec4<f32>, 16> {
    var acc: array<vec4<f32>, 16>;
    let abase = t.batch * p.stride_a;
    let bbase = t.batch * p.stride_b;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TILE_K) {
        tile_load_a(li, abase, t.row0, k0);
        // 16 rows x 32 vec4 = 512 vec4: four per invocation.
        for (var s = 0u; s < 4u; s = s + 1u) {
            let i = li + TILE_THREADS * s;
            tile_b[i] = gemm_load_b_nn(bbase, k0 + i / 32u, t.col0 + 4u * (i % 32u));
        }
        workgroupBarrier();
        tile_mul_nn(&acc, lid.x, lid.y);
        // The next iteration overwrites the slices: wait until everyone has read them.
        workgroupBarrier();
    }
    return acc;
}

fn tile_product_nt(t: GemmTile, lid: vec3<u32>, li: u32) -> array<vec4<f32>, 16> {
    var acc: array<vec4<f32>, 16>;
    let abase = t.batch * p.stride_a;
    let bbase = t.batch * p.stride_b;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TILE_K) {
        tile_load_a(li, abase, t.row0, k0);
        // 128 rows x 4 vec4 = 512 vec4: four per invocation.
        for (var s = 0u; s < 4u; s = s + 1u) {
            let i = li + TILE_THREADS * s;
            tile_bt[(i / 4u) * TILE_KPAD + i % 4u] = gemm_load_b_nt(bbase, t.col0 + i / 4u, k0 + 4u * (i % 4u));
        }
        workgroupBarrier();
        tile_mul_nt(&acc, lid.x, lid.y);
        workgroupBarrier();
    }
    return acc;
}

// Where accumulator s, component e of invocation (tx, ty) goes in C: (row, column).
fn tile_at_nn(t: GemmTile, lid: vec3<u32>, s: u32, e: u32) -> vec2<u32> {
    return vec2<u32>(t.row0 + lid.y + 8u * (s / 2u), t.col0 + 4u * (lid.x + 16u * (s % 2u)) + e);
}

fn tile_at_nt(t: GemmTile, lid: vec3<u32>, s: u32, e: u32) -> vec2<u32> {
    return vec2<u32>(t.row0 + lid.y + 8u * (s / 2u), t.col0 + lid.x + 16u * (4u * (s % 2u) + e));
}

// Entry points: {B [k, n], B [n, k]} x {no bias, bias}. One workgroup per tile (the grid wraps
// into y past 65535); workgroups past the last tile return at once, as a whole.
@compute @workgroup_size(16, 8)
fn gemm_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = gemm_tile(wid, nwg, TILE_M, TILE_N);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = tile_product_nn(t, lid, li);
    for (var s = 0u; s < 16u; s = s + 1u) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let at = tile_at_nn(t, lid, s, e);
            gemm_store(t.batch, at.x, at.y, acc[s][e]);
        }
    }
}

@compute @workgroup_size(16, 8)
fn gemm_nn_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = gemm_tile(wid, nwg, TILE_M, TILE_N);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = tile_product_nn(t, lid, li);
    for (var s = 0u; s < 16u; s = s + 1u) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let at = tile_at_nn(t, lid, s, e);
            gemm_store_bias(t.batch, at.x, at.y, acc[s][e]);
        }
    }
}

@compute @workgroup_size(16, 8)
fn gemm_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = gemm_tile(wid, nwg, TILE_M, TILE_N);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = tile_product_nt(t, lid, li);
    for (var s = 0u; s < 16u; s = s + 1u) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let at = tile_at_nt(t, lid, s, e);
            gemm_store(t.batch, at.x, at.y, acc[s][e]);
        }
    }
}

@compute @workgroup_size(16, 8)
fn gemm_nt_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = gemm_tile(wid, nwg, TILE_M, TILE_N);
    if (t.batch >= p.batch) {
        return;
    }
    var acc = tile_product_nt(t, lid, li);
    for (var s = 0u; s < 16u; s = s + 1u) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let at = tile_at_nt(t, lid, s, e);
            gemm_store_bias(t.batch, at.x, at.y, acc[s][e]);
        }
    }
}
