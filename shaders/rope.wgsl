// Rotary position embedding of x [T, H, d] (token-major, heads, head dim): pair i of token t
// is turned by the angle a = pos * theta^(-2i/d), pos = start + t, start from a runtime slot:
//   (u, v) -> (u cos a - v sin a, u sin a + v cos a)
// rope_adjacent pairs (x[2i], x[2i+1])       (GGUF / llama.cpp "NORM" rope type);
// rope_halves   pairs (x[i],  x[i + d/2])    (Hugging Face rotate_half).
//
// The angle is built from exact 64-bit fixed-point turns (shaders/rope_angle.wgsl, prepended,
// explains the precision argument).
//
// One invocation per pair, 256 per workgroup (WebGPU's guaranteed maximum; a multiple of every
// subgroup size). More than 65535 workgroups wrap into y: pair = (y * nx + x) * 256 + local.

struct Params {
    pairs: u32,      // T * H * d / 2
    heads: u32,      // H
    half_d: u32,     // d / 2
    slot: u32,       // runtime slot holding the position of token 0
    r: vec2<u32>,    // theta^(-2/d) as a 64-bit fraction (lo, hi)
    c: vec2<u32>,    // 1 / (2 pi) as a 64-bit fraction (lo, hi)
}

// WG comes from src/kernels/rope.rs (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;

struct Pair {
    inside: bool,
    first: u32,    // index of the pair's first element in x; the second is first + stride
    a: f32,
}

fn locate(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, stride_adjacent: bool) -> Pair {
    let k = flat_group(wid, nwg) * WG + lid;
    // The grid is rounded up to whole workgroups (and whole rows of them): skip the excess.
    if (k >= p.pairs) { return Pair(false, 0u, 0.0); }
    let th = k / p.half_d;           // token * H + head
    let i = k % p.half_d;            // pair within the head
    let t = th / p.heads;
    let pos = runtime_slot(p.slot) + t;
    let d = 2u * p.half_d;
    let first = select(th * d + i, th * d + 2u * i, stride_adjacent);
    return Pair(true, first, turn_angle(i, pos, p.r, p.c));
}

fn rotate(first: u32, second: u32, a: f32) {
    let y2 = rotate_pair(x[first], x[second], a);
    y[first] = y2.x;
    y[second] = y2.y;
}

@compute @workgroup_size(WG)
fn rope_adjacent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let q = locate(wid, nwg, lid, true);
    if (q.inside) {
        rotate(q.first, q.first + 1u, q.a);
    }
}

@compute @workgroup_size(WG)
fn rope_halves(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let q = locate(wid, nwg, lid, false);
    if (q.inside) {
        rotate(q.first, q.first + p.half_d, q.a);
    }
}
