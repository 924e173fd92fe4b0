// The parameters and bindings of the GEMV modules (gemv.wgsl and the files after it), and
// the one W read that every load function (gemv_io.wgsl, gemv_fused.wgsl) shares. It comes
// before the loads, which come before gemv.wgsl's kernel body.

struct Params {
    n: u32,          // rows of W = length of y
    k: u32,          // length of x = columns of W
    units: u32,      // units per W row: k/4 (f32 vec4), k (f32 scalar), k/16 (Q8_0), k/32 (Q4_1)
    act: u32,        // ACT_* from activation.wgsl
    d_word: u32,     // quantized W: u32 index of the first block scale d (after the quants)
    m_word: u32,     // Q4_1: u32 index of the first block min m
    groups_x: u32,   // workgroups along x of the (wrapped) grid
    flags: u32,      // fused GEMV only (gemv_fused.wgsl): FUSE_* bits
    eps: f32,        // fused GEMV with RMSNorm: its eps
}

// WG and ROWS come from src/kernels/gemv.rs (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> wq: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

// A scale plane entry (f32 bits) read through the vec4<u32> view of W.
fn plane(word: u32) -> f32 {
    return bitcast<f32>(wq[word >> 2u][word & 3u]);
}
