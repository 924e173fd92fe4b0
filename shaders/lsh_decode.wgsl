// Reformer's cached decoding step as Hugging Face computes it with past_buckets_states (the
// semantics are written out in src/graph/lsh_decode.rs): the new token's buckets, its LSH
// attention over a window of each round's bucket-sorted cache, and its local attention.
//
// Layout: caches [rows, H·d] (qk, v; local k, v) and [rows, H·R] (buckets, f32 integers),
// row = position; the new token is row n = runtime_slot(p.slot), so L = n + 1 positions.
//
// Entry points:
// - lsh_decode_hash:      one invocation per (row, head, round): its offset bucket, a fixed
//                         round stride (a prompt's rows).
// - lsh_decode_hash_step: one workgroup: HF's stride choice (the max over the cached buckets of
//                         rows < n), then one invocation per (head, round) of row 0.
// - lsh_decode_attend:    one workgroup per (head, round): the new query's window, found
//                         without sorting (below), and its attention; [H·R, d + 1] output and
//                         log-sum-exp into scratch.
// - lsh_decode_combine:   one workgroup per head: rounds combined by exp(lse_r - logsumexp).
// - local_decode:         one workgroup per head: local attention over the cached window.
//
// The window without a sort: within one (head, round) the sort keys bucket'·L + j (bucket' the
// bucket less the round's offset r·nb) are unique. HF's window is the run of sorted ranks
// start, start + 1, ... (W of them, mod L); a rank taken q0 = W / L times over, plus once more
// for the W mod L ranks from a = start mod L on. So only two order statistics are needed, the
// keys at ranks a and a + (W mod L) - 1 (mod L), each found by a binary search over key values
// counting keys <= the probe (log2 of the key range passes over L keys). Membership of
// position j is then a comparison of its key with those two: O(L log L) work per step with no
// sort and no per-position rank. The members are compacted in position order (a scan per tile
// of WG positions), so the sums run in a fixed order. Their attention follows HF: scores in
// f32, the own position's copies set to -1e5, lse = m + log(Σ mult · exp(s - m)) rounded to
// f32 and weights exp(s - lse) (HF normalises by the rounded lse; see shaders/lsh.wgsl).

struct Params {
    heads: u32,      // H
    rounds: u32,     // R
    d: u32,          // head size
    rows: u32,       // T (hash) or cache rows
    s: u32,          // hash: rotation columns per round
    stride: u32,     // hash: round offset stride (fixed mode)
    count: u32,      // buckets per round (nb)
    n_factors: u32,  // hash: factors in use
    chunk: u32,      // C
    before: u32,
    after: u32,
    dense_until: u32, // attend: steps with L <= this attend densely
    slot: u32,       // runtime slot holding n
    scale: f32,      // 1 / sqrt(d)
    pad0: u32,
    pad1: u32,
    factors: vec4<u32>,
}

const SELF_MASK: f32 = -1e5;
const MAX_WINDOW: u32 = 1024u; // graph::DECODE_MAX_WINDOW
const MAX_D: u32 = 128u;       // graph::LSH_MAX_HEAD_DIM

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> a_in: array<f32>;  // qk (hash, attend), q (local), scratch (combine)
@group(0) @binding(4) var<storage, read> b_in: array<f32>;  // rotations (hash), v (attend), k (local)
@group(0) @binding(5) var<storage, read> c_in: array<f32>;  // bucket cache (hash step, attend), v (local)

var<workgroup> red_u: array<u32, WG>;
var<workgroup> red_f: array<f32, WG>;
var<workgroup> memb: array<u32, MAX_WINDOW>;
var<workgroup> mult: array<u32, MAX_WINDOW>;
var<workgroup> wts: array<f32, MAX_WINDOW>;
var<workgroup> q_w: array<f32, MAX_D>;
var<workgroup> uni_u: u32;
var<workgroup> uni_f: f32;

// ---------------------------------------------------------------------------------------
// Hashing (as shaders/lsh.wgsl: argmax over [x·R, -x·R] per factor, the first maximum
// winning; factors combined mixed-radix)

fn bucket_of(row: u32, h: u32, r: u32) -> u32 {
    let d = p.d;
    let x0 = (row * p.heads + h) * d;
    var bucket = 0u;
    var start = 0u;
    var product = 1u;
    for (var f = 0u; f < p.n_factors; f++) {
        let half = p.factors[f] / 2u;
        var max_pos = 0.0;
        var best_pos = 0u;
        var min_neg = 0.0;
        var best_neg = 0u;
        for (var j = 0u; j < half; j++) {
            var xr = 0.0;
            // rotations [H, d, R, S]: element (h, k, r, start + j)
            for (var k = 0u; k < d; k++) {
                xr += a_in[x0 + k] * b_in[((h * d + k) * p.rounds + r) * p.s + start + j];
            }
            if (j == 0u || xr > max_pos) {
                max_pos = xr;
                best_pos = j;
            }
            if (j == 0u || xr < min_neg) {
                min_neg = xr;
                best_neg = j;
            }
        }
        bucket += select(best_pos, half + best_neg, -min_neg > max_pos) * product;
        start += half;
        product *= p.factors[f];
    }
    return bucket;
}

@compute @workgroup_size(WG)
fn lsh_decode_hash(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_group(wid, nwg) * WG + lane;
    let hr = p.heads * p.rounds;
    if (i >= p.rows * hr) {
        return;
    }
    let r = i % p.rounds;
    let h = (i / p.rounds) % p.heads;
    let row = i / hr;
    out[i] = f32(bucket_of(row, h, r) + r * p.stride);
}

@compute @workgroup_size(WG)
fn lsh_decode_hash_step(@builtin(local_invocation_index) lane: u32) {
    let n = runtime_slot(p.slot);
    let hr = p.heads * p.rounds;
    // HF's increase_num_buckets: a cached bucket above R·nb - 1 (the padding bucket's offsets).
    var m = 0.0;
    for (var i = lane; i < n * hr; i += WG) {
        m = max(m, c_in[i]);
    }
    red_f[lane] = m;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lane < w) {
            red_f[lane] = max(red_f[lane], red_f[lane + w]);
        }
        workgroupBarrier();
    }
    let stride = p.count + u32(red_f[0] > f32(p.rounds * p.count) - 1.0);
    for (var i = lane; i < hr; i += WG) {
        let r = i % p.rounds;
        out[i] = f32(bucket_of(0u, i / p.rounds, r) + r * stride);
    }
}

// ---------------------------------------------------------------------------------------
// Workgroup reductions (every invocation calls them; the result is workgroup-uniform)

fn sum_u(lane: u32, v: u32) -> u32 {
    red_u[lane] = v;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lane < w) {
            red_u[lane] += red_u[lane + w];
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        uni_u = red_u[0];
    }
    return workgroupUniformLoad(&uni_u);
}

fn max_f(lane: u32, v: f32) -> f32 {
    red_f[lane] = v;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lane < w) {
            red_f[lane] = max(red_f[lane], red_f[lane + w]);
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        uni_f = red_f[0];
    }
    return workgroupUniformLoad(&uni_f);
}

fn sum_f(lane: u32, v: f32) -> f32 {
    red_f[lane] = v;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lane < w) {
            red_f[lane] += red_f[lane + w];
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        uni_f = red_f[0];
    }
    return workgroupUniformLoad(&uni_f);
}

// Exclusive prefix sum of v over the workgroup (Hillis-Steele in red_u); returns this lane's.
fn scan_u(lane: u32, v: u32) -> u32 {
    red_u[lane] = v;
    workgroupBarrier();
    for (var w = 1u; w < WG; w *= 2u) {
        var add = 0u;
        if (lane >= w) {
            add = red_u[lane - w];
        }
        workgroupBarrier();
        red_u[lane] += add;
        workgroupBarrier();
    }
    let inclusive = red_u[lane];
    workgroupBarrier();
    return inclusive - v;
}

// ---------------------------------------------------------------------------------------
// LSH attention of the new token

// The sort key of position j in (head, round) column `col`: bucket'·L + j.
fn sort_key(j: u32, col: u32, r: u32, l: u32) -> u32 {
    return (u32(c_in[j * p.heads * p.rounds + col]) - r * p.count) * l + j;
}

// Keys <= `probe` among the L keys of column `col`.
fn count_le(lane: u32, probe: u32, col: u32, r: u32, l: u32) -> u32 {
    var c = 0u;
    for (var j = lane; j < l; j += WG) {
        c += u32(sort_key(j, col, r, l) <= probe);
    }
    return sum_u(lane, c);
}

// The key of sorted rank t (0-based): the smallest probe with more than t keys <= it.
fn key_at_rank(lane: u32, t: u32, col: u32, r: u32, l: u32) -> u32 {
    var lo = 0u;
    var hi = (p.count + p.rounds) * l; // above every key (the builder checks it fits)
    loop {
        if (lo >= hi) {
            break;
        }
        let mid = lo + (hi - lo) / 2u;
        if (count_le(lane, mid, col, r, l) > t) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    return lo;
}

// Appends the lanes with mult m > 0 (position j) to memb/mult in lane order from `base`;
// returns how many were appended (uniform).
fn compact(lane: u32, base: u32, j: u32, m: u32) -> u32 {
    let flag = u32(m > 0u);
    let at = base + scan_u(lane, flag);
    if (flag == 1u) {
        memb[at] = j;
        mult[at] = m;
    }
    return sum_u(lane, flag);
}

// Softmax of the query in q_w over the members (keys: qk length-normalised when `norm`, the
// member at `self_pos` then masked; else local keys): leaves each member's weight
// mult · exp(s - lse) in wts and returns the log-sum-exp (uniform). Every lane calls it.
fn attend_members(lane: u32, count: u32, h: u32, self_pos: u32, norm: bool) -> f32 {
    let d = p.d;
    var m = -3.4e38;
    for (var i = lane; i < count; i += WG) {
        let j = memb[i];
        let k0 = (j * p.heads + h) * d;
        var dot = 0.0;
        var ss = 0.0;
        for (var c = 0u; c < d; c++) {
            let kc = key_value(k0 + c, norm);
            dot += q_w[c] * kc;
            ss += kc * kc;
        }
        var s = dot * p.scale;
        if (norm) {
            s = dot * inverseSqrt(ss / f32(d) + 1e-6) * p.scale;
        }
        if (norm && j == self_pos) {
            s = SELF_MASK;
        }
        wts[i] = s;
        m = max(m, s);
    }
    let mx = max_f(lane, m);
    var part = 0.0;
    for (var i = lane; i < count; i += WG) {
        part += f32(mult[i]) * exp(wts[i] - mx);
    }
    let lse = mx + log(sum_f(lane, part));
    for (var i = lane; i < count; i += WG) {
        wts[i] = f32(mult[i]) * exp(wts[i] - lse);
    }
    workgroupBarrier();
    return lse;
}

// Keys: qk (attend) in a_in, local k in b_in.
fn key_value(i: u32, norm: bool) -> f32 {
    if (norm) {
        return a_in[i];
    }
    return b_in[i];
}

@compute @workgroup_size(WG)
fn lsh_decode_attend(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let col = wid.x; // h · R + r
    let h = col / p.rounds;
    let r = col % p.rounds;
    let n = runtime_slot(p.slot);
    let l = n + 1u;
    let d = p.d;
    let dense = l <= p.dense_until;
    let o0 = col * (d + 1u);
    if (dense && r > 0u) {
        return; // HF's dense steps have one result; lsh_decode_combine reads round 0 only
    }
    for (var c = lane; c < d; c += WG) {
        q_w[c] = a_in[(n * p.heads + h) * d + c];
    }
    var q0 = 1u;
    var wr = 0u;
    var ka = 0u;
    var ke = 0u;
    var wraps = false;
    if (!dense) {
        let knew = sort_key(n, col, r, l);
        var below = 0u;
        for (var j = lane; j < l; j += WG) {
            below += u32(sort_key(j, col, r, l) < knew);
        }
        let s = sum_u(lane, below);
        let w = p.chunk * (1u + p.before + p.after);
        let start = (i32(s / p.chunk) - i32(p.before)) * i32(p.chunk);
        let a = u32(((start % i32(l)) + i32(l)) % i32(l));
        q0 = w / l;
        wr = w % l;
        if (wr > 0u) {
            ka = key_at_rank(lane, a, col, r, l);
            ke = key_at_rank(lane, (a + wr - 1u) % l, col, r, l);
            wraps = a + wr > l;
        }
    }
    var count = 0u;
    for (var base = 0u; base < l; base += WG) {
        let j = base + lane;
        var m = 0u;
        if (j < l) {
            m = q0;
            if (wr > 0u) {
                let k = sort_key(j, col, r, l);
                let inside = select(k >= ka && k <= ke, k >= ka || k <= ke, wraps);
                m += u32(inside);
            }
            if (dense) {
                m = 1u;
            }
        }
        count += compact(lane, count, j, m);
    }
    let lse = attend_members(lane, count, h, n, true);
    for (var c = lane; c < d; c += WG) {
        var acc = 0.0;
        for (var i = 0u; i < count; i++) {
            acc += wts[i] * b_in[(memb[i] * p.heads + h) * d + c];
        }
        out[o0 + c] = acc;
    }
    if (lane == 0u) {
        out[o0 + d] = lse;
    }
}

@compute @workgroup_size(WG)
fn lsh_decode_combine(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let d = p.d;
    let l = runtime_slot(p.slot) + 1u;
    var rounds = p.rounds;
    if (l <= p.dense_until) {
        rounds = 1u;
    }
    let base = h * p.rounds * (d + 1u);
    var m = -3.4e38;
    for (var r = 0u; r < rounds; r++) {
        m = max(m, a_in[base + r * (d + 1u) + d]);
    }
    var total = 0.0;
    for (var r = 0u; r < rounds; r++) {
        total += exp(a_in[base + r * (d + 1u) + d] - m);
    }
    let lse = m + log(total);
    for (var c = lane; c < d; c += WG) {
        var acc = 0.0;
        for (var r = 0u; r < rounds; r++) {
            let at = base + r * (d + 1u);
            acc += exp(a_in[at + d] - lse) * a_in[at + c];
        }
        out[h * d + c] = acc;
    }
}

// ---------------------------------------------------------------------------------------
// Local attention of the new token

@compute @workgroup_size(WG)
fn local_decode(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let n = runtime_slot(p.slot);
    let d = p.d;
    // HF: past_states[:, start:], start = (n // C - before) · C as a Python slice start.
    let start = (i32(n / p.chunk) - i32(p.before)) * i32(p.chunk);
    var lo = u32(max(start, 0));
    if (start < 0) {
        lo = u32(max(i32(n) + start, 0));
    }
    for (var c = lane; c < d; c += WG) {
        q_w[c] = a_in[h * d + c];
    }
    var count = 0u;
    for (var base = lo; base <= n; base += WG) {
        let j = base + lane;
        count += compact(lane, count, j, u32(j <= n));
    }
    attend_members(lane, count, h, n, false);
    for (var c = lane; c < d; c += WG) {
        var acc = 0.0;
        for (var i = 0u; i < count; i++) {
            acc += wts[i] * c_in[(memb[i] * p.heads + h) * d + c];
        }
        out[h * d + c] = acc;
    }
}
