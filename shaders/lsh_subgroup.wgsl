// lsh_hash for adapters that run shaders on CPU cores (lavapipe/llvmpipe, SwiftShader), on
// subgroup broadcasts: appended to lsh.wgsl as module lsh_subgroup, created only where the
// device has the SUBGROUP feature with subgroups of at least 8 lanes (the host checks, as for
// gemm_subgroup.wgsl, which explains why broadcasts beat loads on such drivers).
//
// The same workgroups as lsh_hash (one (row, round) and WG tokens; lanes are tokens). Every
// lane needs every rotation element of its (row, round), so rather than each lane loading the
// same element, lane l of each group of 8 loads column j0 + l, and eight broadcasts hand all
// lanes the eight columns: one load per lane per 8 columns instead of 8. The loops run in
// uniform control flow (lanes past the last token hash a copy of it), as broadcasts require.
enable subgroups;

// Columns j0 .. j0+7 of one factor for the lane's token row (in q_s), as two vec4.
fn sg_columns(h: u32, r: u32, start: u32, j0: u32, half: u32, l8: u32) -> array<vec4<f32>, 2> {
    let step = p.rounds * p.s;
    var base = (h * p.d4 * 4u * p.rounds + r) * p.s + start + min(j0 + l8, half - 1u);
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var k = 0u; k < p.d4; k++) {
        let x = q_s[k];
        for (var e = 0u; e < 4u; e++) {
            let v = rot[base];
            let xe = vec4<f32>(x[e]);
            let b0 = vec4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
            let b1 = vec4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
            lo = fma(xe, b0, lo);
            hi = fma(xe, b1, hi);
            base += step;
        }
    }
    return array<vec4<f32>, 2>(lo, hi);
}

fn hash_bucket_sg(t: u32, h: u32, r: u32, l8: u32) -> u32 {
    load_row(t, h);
    var bucket = 0u;
    var start = 0u;
    var product = 1u;
    for (var f = 0u; f < p.n_factors; f++) {
        let half = p.factors[f] / 2u;
        var best = Best();
        for (var j0 = 0u; j0 < half; j0 += 8u) {
            let c = sg_columns(h, r, start, j0, half, l8);
            for (var q = 0u; q < 8u; q++) {
                best_take(&best, c[q / 4u][q % 4u], min(j0 + q, half - 1u));
            }
        }
        bucket += best_index(best, half) * product;
        start += half;
        product *= p.factors[f];
    }
    return bucket;
}

@compute @workgroup_size(WG)
fn lsh_hash_sg(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(subgroup_invocation_id) sl: u32) {
    let t = wid.x * WG + lane;
    let hr = wid.y;
    let bucket = hash_bucket_sg(min(t, p.l - 1u), hr / p.rounds, hr % p.rounds, sl % 8u);
    if (t < p.l) {
        hash_store(t, hr, bucket);
    }
}
