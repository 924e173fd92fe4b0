// The tiled GEMM (gemm.wgsl) with B in f16: this family's module is activation.wgsl,
// gemm_common.wgsl, gemm_b16.wgsl (the f16 B binding and loads) and gemm.wgsl, composed in
// src/kernels/mod.rs; the file itself adds nothing. It exists so that the module has a name
// of its own, created only on adapters with SHADER_F16.
