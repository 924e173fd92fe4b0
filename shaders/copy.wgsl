// Row copies.
// - write_rows: into persistent state, in place: dst[(start + r) * cols + c] = src[r * cols + c],
//   with `start` read from a runtime slot. This is how a KV cache takes the new step's keys and
//   values without being copied: the plan is replayed and only the slot changes.
// - rows: a contiguous range of rows, out[r * cols + c] = src[(start + r) * cols + c] (e.g. the
//   last position's hidden state, so a prefill computes logits for one row, not all).
// - place_rows: a whole matrix at a row offset, dst[(start + r) * cols + c] = src[r * cols + c]
//   (one launch per input of concat_rows).
//
// One invocation per copied element, 256 per workgroup, 2-D grid as in elementwise.wgsl.

struct Params {
    n: u32,          // elements copied
    cols: u32,
    arg: u32,        // write_rows: rows of dst (writes past the end are dropped, see below);
                     // rows: the first source row; place_rows: the first destination row
    slot: u32,       // write_rows: runtime slot holding the first destination row
}

// WG comes from src/kernels/copy.rs (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;

@compute @workgroup_size(WG)
fn write_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    if (i >= p.n) { return; }
    let row = runtime_slot(p.slot) + i / p.cols;
    // The host checks the start row when it sets the slot; this guard keeps a bad value from
    // writing outside the state buffer on backends without robust buffer access.
    if (row >= p.arg) { return; }
    dst[row * p.cols + i % p.cols] = src[i];
}

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    // The grid is rounded up to whole workgroups: skip the excess.
    if (i >= p.n) { return; }
    dst[i] = src[p.arg * p.cols + i];
}

@compute @workgroup_size(WG)
fn place_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    if (i >= p.n) { return; }
    dst[p.arg * p.cols + i] = src[i];
}
