enable f16;

// f16 KV caches for rope_kv.wgsl (family rope_kv_f16, needs SHADER_F16): the same bindings and
// stores as rope_kv_f32.wgsl, each value rounded to f16 as it is written (as write_rows_f16
// does for the unfused append).

@group(0) @binding(3) var<storage, read_write> k_cache: array<f16>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f16>;

fn store_k(i: u32, x: f32) {
    k_cache[i] = f16(x);
}

fn store_v(i: u32, x: f32) {
    v_cache[i] = f16(x);
}
