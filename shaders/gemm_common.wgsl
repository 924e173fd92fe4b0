// Shared by the GEMM families (gemm, gemm_subgroup, gemm_f16, gemm_f16_subgroup): their params,
// the bindings they all have (C, A, bias; B's element type differs, so gemm_b32.wgsl or
// gemm_b16.wgsl declares it),
// tile coordinates, bounds-checked loads of A and the epilogue. Not a module of its own: it is
// prepended to those families after activation.wgsl (see src/kernels/mod.rs), since WGSL has no
// include.
//
// C[b] = act(A[b] · B[b] + bias), or A[b] · B[b]ᵀ: A [batch, m, k] row-major; B [k, n] or, with
// the transposed entry points, [n, k] (linear weights as PyTorch and GGUF store them), either one
// matrix shared by the whole batch (stride_b = 0) or one per batch; C [batch, m, n].
//
// A and B are bound as arrays of vec4: every buffer is padded to a multiple of 16 bytes
// (gpu::buffer::padded), so an element index i is always inside element i / 4 of the array.
// When a row length is a multiple of 4 (vec_a, vec_b), 4-aligned runs of a row are one vec4
// load; otherwise single components are picked out (the scalar fallback).

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    stride_a: u32,   // elements between consecutive batches of A (m * k)
    stride_b: u32,   // elements between batches of B; 0 shares one B across the batch
    stride_c: u32,   // elements between batches of C (m * n)
    tiles_m: u32,    // workgroup tiles down the rows of C: ceil(m / tile rows)
    tiles_n: u32,    // workgroup tiles along the columns of C: ceil(n / tile columns)
    act: u32,        // ACT_* from activation.wgsl
    vec_a: u32,      // 1 when k % 4 == 0: A's rows (and batches) start 16-byte aligned
    vec_b: u32,      // 1 when B's rows (n long, or k when transposed) are a multiple of 4 long
}

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

// The tile of C a workgroup computes: its batch and its first row and column.
struct GemmTile {
    batch: u32,
    row0: u32,
    col0: u32,
}

// Tiles are numbered batch by batch and, within a batch, down each column of tiles first, so
// that consecutive workgroups read the same columns of B while those are still in cache. The
// grid is 2-D (wrapped into y on the host) so that more than 65535 tiles, the per-dimension
// limit, still launch; the flat index rebuilt here may then run past the last tile (a partial
// last row of workgroups): `batch >= p.batch` tells the caller to do nothing.
fn gemm_tile(wid: vec3<u32>, nwg: vec3<u32>, rows: u32, cols: u32) -> GemmTile {
    let t = flat_group(wid, nwg);
    let per_batch = p.tiles_m * p.tiles_n;
    let in_batch = t % per_batch;
    return GemmTile(t / per_batch, (in_batch % p.tiles_m) * rows, (in_batch / p.tiles_m) * cols);
}

// A[row][k .. k+3] of the batch starting at element `base`, k a multiple of 4. Zero past the
// last row (edge tiles stick out of A) and past the end of the row (the last k-step of the
// tile, or k not a multiple of 4), so those lanes add nothing to the dot products.
fn gemm_load_a(base: u32, row: u32, k: u32) -> vec4<f32> {
    if (row >= p.m || k >= p.k) {
        return vec4<f32>(0.0);
    }
    let i = base + row * p.k + k;
    if (p.vec_a == 1u) {
        // k % 4 == 0: the run is inside the row and i is a multiple of 4.
        return a[i / 4u];
    }
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        // Scalar fallback: only the elements that are still in this row.
        if (k + j < p.k) {
            v[j] = a[(i + j) / 4u][(i + j) % 4u];
        }
    }
    return v;
}

// Unchecked form for fast paths: only for vec_a == 1, k inside the row and a row index the
// caller has clamped into A (rows past m then repeat the last row; their results are dropped).
fn gemm_load_a_fast(base: u32, row: u32, k: u32) -> vec4<f32> {
    return a[(base + row * p.k + k) / 4u];
}

// Writes one element of C after the activation. Edge tiles stick out of C: the elements
// outside it are computed (from zero padding) but not written.
fn gemm_store(batch: u32, row: u32, col: u32, v: f32) {
    if (row < p.m && col < p.n) {
        c[batch * p.stride_c + row * p.n + col] = activate(v, p.act);
    }
}

// Same after adding the bias. A separate function because a shader that reads `bias` at all
// needs the binding in its layout, and a matmul without a bias has nothing to bind there.
fn gemm_store_bias(batch: u32, row: u32, col: u32, v: f32) {
    if (row < p.m && col < p.n) {
        c[batch * p.stride_c + row * p.n + col] = activate(v + bias[col], p.act);
    }
}
