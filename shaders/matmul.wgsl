// Straightforward batched matmul: C[b] = act(A[b] · B[b] + bias) (or A[b] · B[b]ᵀ, the layout
// of PyTorch and GGUF linear weights; bias and act optional, act from the activation prelude).
// One invocation per output element, no tiling: this is the correctness baseline the tuned
// GEMM is measured against.
//
// Each 16x16 workgroup covers one tile of C; local x runs along columns so neighbouring
// invocations read neighbouring elements of B (coalesced when B is not transposed).
// Tiles are numbered batch-major, then by row, then by column, and the workgroup grid is 2-D
// (wrapping into y) so that more than 65535 tiles, the per-dimension limit, still launch.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    trans_b: u32,    // 1: B is stored [n, k] (row j holds column j of the product's right side)
    stride_a: u32,   // elements between consecutive batches of A
    stride_b: u32,   // elements between batches of B; 0 shares one B across the batch
    stride_c: u32,
    batch: u32,
    tiles_n: u32,    // tiles along a row of C: ceil(n / 16)
    act: u32,        // ACT_* from activation.wgsl
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

// TILE comes from src/kernels/matmul.rs (wgsl_consts).

// One output element: where it goes, its column (for the bias) and its dot product.
struct Dot {
    index: u32,
    col: u32,
    acc: f32,
    inside: bool,
}

fn dot_at(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> Dot {
    let tile = flat_group(wid, nwg);
    let tiles_m = (p.m + TILE - 1u) / TILE;
    let batch = tile / (tiles_m * p.tiles_n);
    let in_batch = tile % (tiles_m * p.tiles_n);
    let row = (in_batch / p.tiles_n) * TILE + lid.y;
    let col = (in_batch % p.tiles_n) * TILE + lid.x;
    // Tiles at the right and bottom edges stick out of C, and the wrapped grid may hold more
    // tiles than C has (a partial last row of workgroups): those invocations do nothing.
    if (row >= p.m || col >= p.n || batch >= p.batch) {
        return Dot(0u, 0u, 0.0, false);
    }
    let a0 = batch * p.stride_a + row * p.k;
    let b0 = batch * p.stride_b;
    var acc = 0.0;
    if (p.trans_b == 1u) {
        let bj = b0 + col * p.k;
        for (var i = 0u; i < p.k; i = i + 1u) {
            acc = acc + a[a0 + i] * b[bj + i];
        }
    } else {
        for (var i = 0u; i < p.k; i = i + 1u) {
            acc = acc + a[a0 + i] * b[b0 + i * p.n + col];
        }
    }
    return Dot(batch * p.stride_c + row * p.n + col, col, acc, true);
}

// Two entry points rather than a runtime flag: a shader that reads `bias` at all needs the
// binding in its layout, and a plain matmul has no bias to bind.
@compute @workgroup_size(TILE, TILE)
fn matmul_naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let d = dot_at(wid, nwg, lid);
    if (d.inside) {
        c[d.index] = activate(d.acc, p.act);
    }
}

@compute @workgroup_size(TILE, TILE)
fn matmul_naive_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    let d = dot_at(wid, nwg, lid);
    if (d.inside) {
        c[d.index] = activate(d.acc + bias[d.col], p.act);
    }
}
