// Layout changes: a general permutation of up to 4 dimensions (e.g. attention's head swap,
// [L, H, d] -> [H, L, d]). The host pads shapes to rank 4 with leading 1s and gives, for each
// output dimension, its size and the stride of the input dimension it comes from; the kernel
// splits the flat output index into coordinates and sums coordinate * stride.
//
// One invocation per output element, 256 per workgroup: 256 is WebGPU's guaranteed maximum
// and a multiple of every subgroup size we meet. Writes are contiguous; reads are strided,
// which is the price of a general permutation. The grid is 2-D (groups wrap into y) because
// more than 65535 * 256 elements need more workgroups than one dimension may hold.

struct Params {
    n: u32,                  // elements (same in input and output)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    out_dims: vec4<u32>,     // output shape, padded to rank 4 with leading 1s
    in_strides: vec4<u32>,   // input stride (in elements) of the dimension output dim k reads
}

// WG comes from src/kernels/layout.rs (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;

@compute @workgroup_size(WG)
fn permute(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    // The grid is rounded up to whole workgroups (and whole rows of groups): skip the excess.
    if (i >= p.n) { return; }
    var rest = i;
    var src = 0u;
    for (var k = 3; k >= 0; k = k - 1) {
        let c = rest % p.out_dims[k];
        rest = rest / p.out_dims[k];
        src = src + c * p.in_strides[k];
    }
    y[i] = x[src];
}
