// The subgroup GEMM (gemm_subgroup.wgsl) with B in f16: this family's module is
// activation.wgsl, gemm_common.wgsl, gemm_b16.wgsl (the f16 B binding and loads) and
// gemm_subgroup.wgsl, composed in src/kernels/mod.rs; the file itself adds nothing. It exists
// so that the module has a name of its own, created only on adapters with both SHADER_F16 and
// SUBGROUP.
