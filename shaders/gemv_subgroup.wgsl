// The GEMV kernels of gemv.wgsl (its prelude here: params, bindings, partial sums) with the
// reduction done by subgroup operations: subgroupAdd folds each subgroup's partials in
// registers, one invocation per subgroup writes its sum to workgroup memory, and invocations
// 0..ROWS-1 add up the (WG / subgroup size) sums. Only on adapters with SUBGROUP; the
// Rust side picks this module when the device has it (and never when a test forces the
// workgroup-memory path).
//
// `enable subgroups;` is what the WGSL specification and browsers require; naga 30 does not
// implement that directive (it gates subgroup operations on the device feature instead), so
// kernels::module_source keeps the line on wasm32 only.
//
// Subgroups are numbered by local_invocation_index / subgroup_size: this module uses only the
// `subgroup_size` and `subgroup_invocation_id` builtins (those in every implementation of the
// extension, browsers included) and relies on a 1-D workgroup being split into consecutive
// runs of subgroup_size invocations, which is how Vulkan, Metal and D3D12 drivers lay them out
// (naga's own HLSL output computes subgroup_id the same way).
enable subgroups;

fn reduce_subgroup(acc: array<f32, ROWS>, lid: u32, lane: u32, sg_size: u32) -> f32 {
    // A subgroup may be wider than the workgroup (e.g. 128 lanes): then there is one, partial.
    let n_sg = (WG + sg_size - 1u) / sg_size;
    // Every invocation calls subgroupAdd (uniform control flow), then lane 0 keeps the sum.
    for (var r = 0u; r < ROWS; r = r + 1u) {
        let s = subgroupAdd(acc[r]);
        if (lane == 0u) {
            red[r * WG + lid / sg_size] = s;
        }
    }
    workgroupBarrier();
    var total = 0.0;
    // Invocations 0..ROWS-1 each add the n_sg subgroup sums of one row; the rest skip it.
    if (lid < ROWS) {
        for (var i = 0u; i < n_sg; i = i + 1u) {
            total = total + red[lid * WG + i];
        }
    }
    return total;
}

@compute @workgroup_size(WG)
fn gemv_f32x4_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                 @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_subgroup(partial_f32x4(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_f32x4_sg_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                      @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_subgroup(partial_f32x4(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_f32_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
               @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_subgroup(partial_f32(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_f32_sg_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                    @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_subgroup(partial_f32(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_q8_0_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_subgroup(partial_q8_0(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_q8_0_sg_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                     @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_subgroup(partial_q8_0(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_q4_1_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_subgroup(partial_q4_1(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_q4_1_sg_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                     @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_subgroup(partial_q4_1(row0, lid), lid, lane, sg));
}
