// Prepended to every module (src/kernels/mod.rs, module_source): what every kernel shares.
//
// Binding 1 of every kernel holds the run's runtime slots (graph::RUNTIME_SLOTS u32 values, in
// 4 vec4 because a uniform array's stride is 16 bytes): values the caller changes between runs
// of one plan (a decode position, a sampling seed) without rebuilding it.
@group(0) @binding(1) var<uniform> rt: array<vec4<u32>, 4>;

// The value of runtime slot `slot` (< 16; the graph builders check slot indices).
fn runtime_slot(slot: u32) -> u32 {
    return rt[slot / 4u][slot % 4u];
}

// The flat index of this workgroup in a grid that kernels::grid_1d wrapped into y when x would
// exceed the per-dimension limit (65535 on WebGPU): y * nx + x.
fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}
