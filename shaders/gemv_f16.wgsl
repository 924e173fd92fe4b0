// GEMV with an f16 weight: the kernels of gemv.wgsl (its prelude here) reading W as f16 and
// widening every element to f32 exactly before the f32 dot product, so the result equals the
// f32 GEMV on the widened weight up to summation order. A module of its own because
// `enable f16;` only compiles on adapters with SHADER_F16 (the Rust side checks and otherwise
// reports Error::Feature). W (`wh4`, one vec4<f16> per unit where K % 4 == 0, rows on 8-byte
// boundaries; `wh`, one element per unit, any K) is declared and read through ld_wh4 / ld_wh
// in kernels::gemv::F16_PLAIN_IO, or F16_FUSED_IO with the second weight of a SwiGLU pair.
enable f16;


fn partial_f16x4(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    // u < units: the tail of the row when units is not a multiple of WG.
    for (var u = lid; u < p.units; u = u + WG) {
        let xv = ld_x4(u);
        for (var r = 0u; r < group_rows(); r = r + 1u) {
            acc[r] = acc[r] + dot(xv, vec4<f32>(ld_wh4(false, w_row(row0, r) * p.units + u)));
        }
        for (var r = group_rows(); r < ROWS; r = r + 1u) {
            acc[r] = acc[r] + dot(xv, vec4<f32>(ld_wh4(true, w_row(row0, r) * p.units + u)));
        }
    }
    return acc;
}

fn partial_f16(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    for (var u = lid; u < p.units; u = u + WG) {
        let xv = ld_x(u);
        for (var r = 0u; r < group_rows(); r = r + 1u) {
            acc[r] = acc[r] + xv * f32(ld_wh(false, w_row(row0, r) * p.units + u));
        }
        for (var r = group_rows(); r < ROWS; r = r + 1u) {
            acc[r] = acc[r] + xv * f32(ld_wh(true, w_row(row0, r) * p.units + u));
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn gemv_f16x4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_shared(partial_f16x4(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_f16x4_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_shared(partial_f16x4(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store(row0, lid, reduce_shared(partial_f16(row0, lid), lid));
}

@compute @workgroup_size(WG)
fn gemv_f16_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = first_row(wid);
    store_bias(row0, lid, reduce_shared(partial_f16(row0, lid), lid));
}
