enable f16;

// f16 keys and values for attention.wgsl (family attention_f16: KV caches in half precision,
// half the memory and bandwidth of f32): the same bindings and loads as attention_kv32.wgsl,
// each widened to f32 (exactly: every f16 is an f32), so scores, softmax and accumulation stay
// f32. Needs SHADER_F16.

@group(0) @binding(4) var<storage, read> k: array<vec4<f16>>;
@group(0) @binding(5) var<storage, read> v: array<vec4<f16>>;

fn load_k(i: u32) -> vec4<f32> {
    return vec4<f32>(k[i]);
}

fn load_v(i: u32) -> vec4<f32> {
    return vec4<f32>(v[i]);
}
