// Row normalisations over the last dimension of x [rows, n]:
//   layer_norm: y = (x - mean) / sqrt(var + eps) * w + b   (biased variance, as torch)
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * w            (Llama)
//
// One workgroup per row, 256 invocations: 256 is WebGPU's guaranteed maximum and a multiple of
// every subgroup size we meet (8 on lavapipe, 32 on NVIDIA, 64 on AMD). Invocation l reads
// elements l, l + 256, l + 512, ... so neighbouring invocations read neighbouring addresses;
// each keeps a partial sum in a register, and the 256 partials are added in workgroup memory
// in a fixed order (see workgroup_sum). Any row length works: rows shorter
// than 256 leave some invocations with an empty partial (0).
//
// Numerics (rows of hundreds to thousands of elements in f32):
// - LayerNorm is two-pass: the mean first, then the mean of squared deviations from it, so
//   the variance is never the difference of two large numbers (E[x^2] - E[x]^2 loses every
//   digit when |mean| >> std).
// - The mean itself is summed as deviations from the row's first element (shifted data), so a
//   row like 1000 + noise adds small numbers and keeps their digits.
// - Partial sums hold ceil(n / 256) terms, then two chains of 16 additions: the error of a sum
//   is below (n / 256 + 32) ulps of the sum of magnitudes, for any n we meet.
//
// The grid is 2-D: more than 65535 rows wrap into y, and row = y * nx + x.

struct Params {
    rows: u32,
    n: u32,      // elements per row (the normalised dimension)
    eps: f32,
}

// WG comes from src/kernels/norm.rs (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> b: array<f32>;

var<workgroup> partial: array<f32, 256>;
var<workgroup> groups: array<f32, 16>;

// The sum of every invocation's `v`, returned to all of them, by two levels of 16-way fan-in
// (3 barriers, where a binary tree needs 8): invocation g < 16 adds the values of invocations
// 16g .. 16g + 15, then every invocation adds the 16 group sums (in the same order, so all get
// the same total). Must be called in uniform control flow (it has barriers).
fn workgroup_sum(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    if (lid < 16u) {
        var g = 0.0;
        for (var j = 0u; j < 16u; j = j + 1u) {
            g = g + partial[lid * 16u + j];
        }
        groups[lid] = g;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var j = 0u; j < 16u; j = j + 1u) {
        total = total + groups[j];
    }
    // Everyone must have read `groups` before a later call overwrites it.
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, nwg);
    // The wrapped grid may hold a few more workgroups than rows. The test is uniform across
    // the workgroup (it depends on the workgroup id only), so the barriers below stay legal.
    if (row >= p.rows) { return; }
    let base = row * p.n;
    let nf = f32(p.n);
    // mean = shift + dev: x - shift is exact for elements within a factor 2 of the shift, so
    // deviations keep their digits however large the common offset.
    let shift = x[base];
    var s = 0.0;
    // Strided walk: indices past the row's end belong to no invocation.
    for (var i = lid; i < p.n; i = i + WG) {
        s = s + (x[base + i] - shift);
    }
    let dev = workgroup_sum(s, lid) / nf;
    var q = 0.0;
    for (var i = lid; i < p.n; i = i + WG) {
        let d = (x[base + i] - shift) - dev;
        q = q + d * d;
    }
    let inv = 1.0 / sqrt(workgroup_sum(q, lid) / nf + p.eps);
    for (var i = lid; i < p.n; i = i + WG) {
        y[base + i] = ((x[base + i] - shift) - dev) * inv * w[i] + b[i];
    }
}

@compute @workgroup_size(WG)
fn rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, nwg);
    // Uniform early exit for the excess workgroups of the wrapped grid (see layer_norm).
    if (row >= p.rows) { return; }
    let base = row * p.n;
    var q = 0.0;
    // Strided walk: indices past the row's end belong to no invocation.
    for (var i = lid; i < p.n; i = i + WG) {
        let v = x[base + i];
        q = q + v * v;
    }
    let inv = 1.0 / sqrt(workgroup_sum(q, lid) / f32(p.n) + p.eps);
    for (var i = lid; i < p.n; i = i + WG) {
        y[base + i] = x[base + i] * inv * w[i];
    }
}
