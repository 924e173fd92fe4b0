// The subgroup GEMM (gemm_subgroup.wgsl) with B in GGUF Q4_1 blocks: this family's module is
// activation.wgsl, gemm_common.wgsl, gemm_bq4_1.wgsl (the block type), gemm_bq.wgsl (the
// dequantizing loads of B) and gemm_subgroup.wgsl, composed in src/kernels/mod.rs; the file
// itself adds nothing. It exists so that the module has a name of its own, created only on
// adapters with SUBGROUP.
