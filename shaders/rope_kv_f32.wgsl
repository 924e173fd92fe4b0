// f32 KV caches for rope_kv.wgsl (family rope_kv): their bindings and stores.
// rope_kv_f16.wgsl defines the same for f16 caches.

@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;

fn store_k(i: u32, x: f32) {
    k_cache[i] = x;
}

fn store_v(i: u32, x: f32) {
    v_cache[i] = x;
}
