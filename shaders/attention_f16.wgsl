// Attention (attention.wgsl) over f16 keys and values: this family's module is
// attention_kv16.wgsl (the f16 bindings and widening loads) and attention.wgsl, composed in
// src/kernels/mod.rs; the file itself adds nothing. It exists so that the module has a name of
// its own, created only on adapters with SHADER_F16.
