// The subgroup GEMM (gemm_subgroup.wgsl) with B in GGUF Q4_1 blocks: this family's module is
// activation.wgsl, gemm_common.wgsl, gemm_bq.wgsl, this file and gemm_subgroup.wgsl, composed
// in src/kernels/mod.rs. It only says which block type gemm_bq.wgsl reads.

fn gemm_bq_q4_1() -> bool {
    return true;
}
