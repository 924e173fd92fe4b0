// Selects GGUF Q4_1 blocks for gemm_bq.wgsl, which follows this prelude in family
// gemm_q4_1_subgroup (a constant, so the compiler drops the other type's branch).

fn gemm_bq_q4_1() -> bool {
    return true;
}
