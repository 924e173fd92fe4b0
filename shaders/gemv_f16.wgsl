// GEMV with an f16 weight: the kernels of gemv.wgsl (its prelude here) reading W as f16 and
// widening every element to f32 exactly before the f32 dot product, so the result equals the
// f32 GEMV on the widened weight up to summation order. A module of its own because
// `enable f16;` only compiles on adapters with SHADER_F16 (the Rust side checks and otherwise
// reports Error::Feature).
enable f16;

// f16 W with K % 4 == 0: rows start on 8-byte boundaries, one vec4<f16> per unit.
@group(0) @binding(4) var<storage, read> wh4: array<vec4<f16>>;
// f16 W with any K: one element per unit.
@group(0) @binding(4) var<storage, read> wh: array<f16>;

fn partial_f16x4(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    // u < units: the tail of the row when units is not a multiple of WG.
    for (var u = lid; u < p.units; u = u + WG) {
        let xv = x4[u];
        for (var r = 0u; r < ROWS; r = r + 1u) {
            acc[r] = acc[r] + dot(xv, vec4<f32>(wh4[w_row(row0, r) * p.units + u]));
        }
    }
    return acc;
}

fn partial_f16(row0: u32, lid: u32) -> array<f32, ROWS> {
    var acc: array<f32, ROWS>;
    for (var u = lid; u < p.units; u = u + WG) {
        let xv = x[u];
        for (var r = 0u; r < ROWS; r = r + 1u) {
            acc[r] = acc[r] + xv * f32(wh[w_row(row0, r) * p.units + u]);
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
