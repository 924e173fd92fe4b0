// Elementwise kernels: binary ops (add, mul) where `b` may repeat along leading dimensions
// (bias, per-channel gain), and unary ops (scale, activations).
//
// One invocation per element, 256 per workgroup: 256 is WebGPU's guaranteed maximum, so every
// adapter accepts it, and it is a multiple of every subgroup size we meet (8 on lavapipe, 32 on
// NVIDIA, 64 on AMD). The grid is two-dimensional because a tensor of more than
// 65535 * 256 elements needs more workgroups than one dimension may hold; groups wrap into y.

struct Params {
    n: u32,       // elements in the output (== elements of a)
    n_b: u32,     // elements of b; b[i % n_b] broadcasts b over a's leading dimensions
    factor: f32,  // scale: the constant factor
    slot: u32,    // scale: runtime slot holding the factor as f32 bits, or NO_SLOT for `factor`
}

// WG and NO_SLOT come from src/kernels/elementwise.rs (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return flat_group(wid, nwg) * WG + lid;
}

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    // The grid is rounded up to whole workgroups (and whole rows of groups): skip the excess.
    if (i >= p.n) { return; }
    out[i] = a[i] + b[i % p.n_b];
}

@compute @workgroup_size(WG)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = a[i] * b[i % p.n_b];
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n) { return; }
    var f = p.factor;
    if (p.slot != NO_SLOT) {
        f = bitcast<f32>(runtime_slot(p.slot));
    }
    out[i] = a[i] * f;
}

@compute @workgroup_size(WG)
fn gelu_erf(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = gelu_erf_f(a[i]);
}

@compute @workgroup_size(WG)
fn gelu_tanh(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = gelu_tanh_f(a[i]);
}

@compute @workgroup_size(WG)
fn silu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = silu_f(a[i]);
}

@compute @workgroup_size(WG)
fn relu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = max(a[i], 0.0);
}

@compute @workgroup_size(256)
fn act_tanh(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = tanh_f(a[i]);
}
