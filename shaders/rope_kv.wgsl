// Rotary embedding of a fused q/k/v projection together with the KV-cache append: one launch
// where the unfused decoder has two ropes and two row writes.
//
// Input qkv [T, (H + 2 Hkv) · d], each row the concatenated projections of one token: H query
// heads, then Hkv key heads, then Hkv value heads, d elements each. With pos = start + t
// (start from a runtime slot), token t's
//   query heads are rotated into q [T, H, d] (the kernel's output, for attention);
//   key heads are rotated into row pos of the key cache [rows, Hkv · d];
//   value heads are copied into row pos of the value cache [rows, Hkv · d].
// Rotation as in rope.wgsl: pair i of a head turns by pos · theta^(-2i/d), pairs (2i, 2i+1)
// (adjacent, GGUF) or (i, i + d/2) (halves, Hugging Face), angles from rope_angle.wgsl. The
// caches are f32 or f16 (rope_kv_f32.wgsl / rope_kv_f16.wgsl: bindings and stores; an f16
// cache takes the values rounded to f16 as they are written).
//
// One invocation per pair of elements of qkv (a rotation, or two value elements copied), 256
// per workgroup, grid wrapped into y past 65535 workgroups as everywhere.

struct Params {
    pairs: u32,      // T * (H + 2 Hkv) * d / 2
    heads: u32,      // H
    kv_heads: u32,   // Hkv
    half_d: u32,     // d / 2
    slot: u32,       // runtime slot holding the position of token 0
    rows: u32,       // rows of each cache (writes past the end are dropped, see below)
    halves: u32,     // 1: pairs (i, i + d/2); 0: pairs (2i, 2i + 1)
    pad: u32,
    r: vec2<u32>,    // theta^(-2/d) as a 64-bit fraction (lo, hi)
    c: vec2<u32>,    // 1 / (2 pi) as a 64-bit fraction (lo, hi)
}

// WG comes from src/kernels/rope_kv.rs (wgsl_consts). The caches (bindings 3 and 4) and their
// stores `store_k`/`store_v` come from the prelude.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read> qkv: array<f32>;

@compute @workgroup_size(WG)
fn rope_kv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let k = flat_group(wid, nwg) * WG + lid;
    // The grid is rounded up to whole workgroups: skip the excess.
    if (k >= p.pairs) { return; }
    let row_heads = p.heads + 2u * p.kv_heads;
    let t = k / (row_heads * p.half_d);
    let th = k / p.half_d;             // t * row_heads + head within the row
    let head = th % row_heads;         // query heads, then key heads, then value heads
    let i = k % p.half_d;              // pair within the head
    let d = 2u * p.half_d;
    let e0 = select(2u * i, i, p.halves == 1u);
    let e1 = select(2u * i + 1u, i + p.half_d, p.halves == 1u);
    let u = qkv[th * d + e0];
    let v = qkv[th * d + e1];
    let pos = runtime_slot(p.slot) + t;
    if (head < p.heads) {
        let y = rotate_pair(u, v, turn_angle(i, pos, p.r, p.c));
        let dst = (t * p.heads + head) * d;
        q[dst + e0] = y.x;
        q[dst + e1] = y.y;
        return;
    }
    // The host checks the position when it sets the slot; this guard keeps a bad value from
    // writing outside the caches on backends without robust buffer access.
    if (pos >= p.rows) { return; }
    let kv = head - p.heads;
    if (kv < p.kv_heads) {
        let y = rotate_pair(u, v, turn_angle(i, pos, p.r, p.c));
        let dst = (pos * p.kv_heads + kv) * d;
        store_k(dst + e0, y.x);
        store_k(dst + e1, y.y);
    } else {
        let dst = (pos * p.kv_heads + kv - p.kv_heads) * d;
        store_v(dst + e0, u);
        store_v(dst + e1, v);
    }
}
