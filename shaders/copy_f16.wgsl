enable f16;

// write_rows (copy.wgsl) into an f16 state: f32 rows (new keys or values) rounded to f16 as
// they are written into a half-precision KV cache, dst[(start + r) * cols + c] =
// f16(src[r * cols + c]), `start` from a runtime slot. A module of its own because its
// destination binding is f16 (needs SHADER_F16). Same params and grid as copy.wgsl.

struct Params {
    n: u32,          // elements copied
    cols: u32,
    arg: u32,        // rows of dst (writes past the end are dropped)
    slot: u32,       // runtime slot holding the first destination row
}

// WG comes from src/kernels/copy.rs (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> dst: array<f16>;
@group(0) @binding(3) var<storage, read> src: array<f32>;

@compute @workgroup_size(WG)
fn write_rows_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    if (i >= p.n) { return; }
    let row = runtime_slot(p.slot) + i / p.cols;
    // As in copy.wgsl: a bad slot value must not write outside the state buffer.
    if (row >= p.arg) { return; }
    dst[row * p.cols + i % p.cols] = f16(src[i]);
}
