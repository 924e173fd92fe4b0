// f16-weight GEMV (gemv_f16.wgsl) with the subgroup reduction (gemv_subgroup.wgsl): both are
// preludes here, so this module needs SHADER_F16 and SUBGROUP.

@compute @workgroup_size(WG)
fn gemv_f16x4_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                 @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_subgroup(partial_f16x4(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_f16x4_sg_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                      @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_subgroup(partial_f16x4(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_f16_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
               @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_subgroup(partial_f16(row0, lid), lid, lane, sg));
}

@compute @workgroup_size(WG)
fn gemv_f16_sg_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                    @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sg: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_subgroup(partial_f16(row0, lid), lid, lane, sg));
}
