// The fused GEMV: gemv.wgsl's kernel with an RMSNorm prologue, a SwiGLU pair of weights and a
// residual epilogue, each switched on by a constant of the module or a bit of `p.flags`. A
// decoder layer's projections then take one launch each.
//
// - RMSNorm (FUSED_RMS): rms_norm(x)·Wᵀ = s · ((x ⊙ gain)·Wᵀ), s = 1/sqrt(mean(x²) + eps) a
//   scalar of the row. x is scaled by the gain as it is loaded, and every invocation adds up
//   x² of the elements it loads; as the K loop hands each element of the row to exactly one
//   invocation of the workgroup, the WG partial sums hold Σx² of the whole row. They are
//   written to workgroup memory before the reduction's barrier, so no barrier is added.
// - SwiGLU (FUSED_SWIGLU): W is the gate weight, `wu*` the up weight of the same shape and
//   dtype (the same repacked plane layout, so d_word / m_word hold for both). A workgroup then
//   computes ROWS/2 outputs: its virtual rows 0..ROWS/2-1 are gate rows and the others the
//   same rows of the up weight, so x is still loaded once for ROWS weight rows. The totals meet
//   in workgroup memory: y = silu(s·gate) · (s·up).
// - Residual (FUSE_RESIDUAL): y += res[row], last. FUSE_BIAS: + bias before the activation.
//
// SwiGLU and RMSNorm, which change the K loop, are the constants FUSED_SWIGLU / FUSED_RMS of
// the module (kernels::gemv::SPEC_*), so their branches fold away; bias and residual, applied
// once per output, are bits of p.flags.
//
// Inputs that a node does not fuse are bound to another input of the right type (x or W), never
// read: the bindings are the same for every flag combination.

@group(0) @binding(6) var<storage, read> wu4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> wu: array<f32>;
@group(0) @binding(6) var<storage, read> wuq: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> gain4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> gain: array<f32>;
@group(0) @binding(8) var<storage, read> res: array<f32>;

// This invocation's Σx² over the elements it loaded (FUSED_RMS).
var<private> sumsq: f32;
// Every invocation's Σx², summed by the invocations that store.
var<workgroup> sumsq_all: array<f32, WG>;
// The totals of the ROWS virtual rows, for the SwiGLU product.
var<workgroup> totals: array<f32, ROWS>;

const HALF: u32 = ROWS / 2u;

fn fused(bit: u32) -> bool {
    return (p.flags & bit) != 0u;
}

fn group_rows() -> u32 {
    if (FUSED_SWIGLU) {
        return HALF;
    }
    return ROWS;
}

fn row_in_group(r: u32) -> u32 {
    if (FUSED_SWIGLU) {
        return r % HALF;
    }
    return r;
}

fn ld_x4(i: u32) -> vec4<f32> {
    let v = x4[i];
    if (FUSED_RMS) {
        sumsq = sumsq + dot(v, v);
        return v * gain4[i];
    }
    return v;
}

fn ld_x(i: u32) -> f32 {
    let v = x[i];
    if (FUSED_RMS) {
        sumsq = sumsq + v * v;
        return v * gain[i];
    }
    return v;
}

fn ld_w4(up: bool, i: u32) -> vec4<f32> {
    if (up) {
        return wu4[i];
    }
    return w4[i];
}

fn ld_w(up: bool, i: u32) -> f32 {
    if (up) {
        return wu[i];
    }
    return w[i];
}

fn ld_wq(up: bool, i: u32) -> vec4<u32> {
    if (up) {
        return wuq[i];
    }
    return wq[i];
}

fn ld_plane(up: bool, word: u32) -> f32 {
    if (up) {
        return bitcast<f32>(wuq[word >> 2u][word & 3u]);
    }
    return plane(word);
}

// Called by every invocation after its partial sums, before the reduction (whose barrier
// publishes the Σx² partials).
fn keep_sumsq(lid: u32) {
    sumsq_all[lid] = sumsq;
}

// Invocations 0..ROWS-1 hold the totals of the virtual rows; the first group_rows() of them
// store an output row each.
fn fused_store(row0: u32, lid: u32, total: f32) {
    let swiglu = FUSED_SWIGLU;
    if (swiglu) {
        if (lid < ROWS) {
            totals[lid] = total;
        }
        workgroupBarrier();
    }
    let row = row0 + lid;
    if (lid >= group_rows() || row >= p.n) {
        return;
    }
    var scale = 1.0;
    if (FUSED_RMS) {
        var ss = 0.0;
        for (var i = 0u; i < WG; i = i + 1u) {
            ss = ss + sumsq_all[i];
        }
        scale = inverseSqrt(ss / f32(p.k) + p.eps);
    }
    var v = total * scale;
    if (swiglu) {
        v = silu_f(totals[lid] * scale) * (totals[lid + HALF] * scale);
    } else {
        if (fused(FUSE_BIAS)) {
            v = v + bias[row];
        }
        v = activate(v, p.act);
    }
    if (fused(FUSE_RESIDUAL)) {
        v = v + res[row];
    }
    y[row] = v;
}
