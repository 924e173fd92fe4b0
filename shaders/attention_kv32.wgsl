// f32 keys and values for attention.wgsl (family attention): their bindings and vec4 loads.
// attention_kv16.wgsl defines the same for f16 (half-size KV caches).

@group(0) @binding(4) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> v: array<vec4<f32>>;

fn load_k(i: u32) -> vec4<f32> {
    return k[i];
}

fn load_v(i: u32) -> vec4<f32> {
    return v[i];
}
