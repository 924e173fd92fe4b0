// Per-row selection over logits [rows, n]: argmax, and sampling with temperature, top-k and
// top-p, for decoding on the GPU without reading the logits back.
//
// One workgroup of 256 invocations per row (WebGPU's guaranteed maximum; a multiple of every
// subgroup size). Invocation l visits elements l, l + 256, ... (neighbours read neighbouring
// addresses) and keeps register partials; partials are combined in workgroup memory in a
// fixed order (two levels of 16-way fan-in).
// More than 65535 rows wrap into y: row = y * nx + x.
//
// Order keys. A float is compared through an order-preserving u32 key (sign-magnitude to
// biased form, -0 folded onto +0), so comparisons are exact integer ones and immune to
// fast-math: -inf -> 0x007fffff, +0 -> 0x80000000, +inf -> 0xff800000. For argmax NaN gets
// the key 0xffffffff (torch.argmax: NaN is the maximum); for sampling NaN gets -inf's key and
// probability 0 (never drawn).
//
// argmax: each invocation keeps its best (key, index), taking only strictly larger keys as
// its indices grow, so ties keep the lowest index; combining keeps the larger key, or on equal
// keys the lower index.
//
// sample: with m the largest logit and T the temperature, element i has the weight
// e_i = exp((l_i - m) / T) in (0, 1] (the largest has exactly 1); probabilities are e_i / sum.
//  1. Greedy (write the argmax, done) when T is below 1e-20 (or NaN), top_k == 1, or the
//     largest logit is infinite (or every logit is -inf / NaN).
//  2. Top-k: tau_k = the k-th largest key (with multiplicity), the largest key t with
//     count(key >= t) >= k. The kept set is {key >= tau_k}: ties with the k-th value stay,
//     as in Hugging Face's TopKLogitsWarper. Z_k = sum of e over it.
//  3. Top-p: tau_c = the largest key t >= tau_k with mass(key >= t) >= top_p * Z_k: the
//     smallest set of largest logits (ties kept together) whose probability reaches top_p.
//     Z_c = its mass. The candidates are C = {key >= tau_c}.
//  4. Draw: u in [0, 1) from 24 bits of a PCG hash of (seed, row); target = u * Z_c (kept
//     below Z_c); the token is the index i in C where the running sum of e over C, in index
//     order, first exceeds the target: the largest index with prefix(i) <= target, where
//     prefix(i) is the mass of C below i.
// No sort is needed: steps 2-4 are searches for the largest threshold with a monotone
// property, 16-way: each pass sweeps the row once and sums, for 16 evenly spaced thresholds
// at once, the weight of the elements past each (count, mass, or mass of C below an index);
// the largest threshold that still qualifies and the next one bound a range 16 times
// narrower. 2^32 keys take 8 passes, n indices ceil(log16 n) passes.
// Consistency: every pass sums a lane's weights in the same order (same invocation walk, same
// combining order; excluded elements add exactly 0), and float addition is monotone in each operand, so
// "mass above t" is one fixed, monotone function of t whichever pass evaluates it, and the
// mass of C seen by the draw equals Z_c exactly. The search is therefore exact for the f32
// sums it computes; results differ from an exact-arithmetic reference only where those sums
// round across a boundary. All passes run through a single call site, so every e_i is
// computed by the same code. A final check falls back to the argmax should the drawn index
// ever lie outside C (it cannot by the argument above; the check guards against compilers).

struct Params {
    rows: u32,
    n: u32,                  // elements per row
    top_k: u32,              // 0: off
    top_p: f32,              // 1: off
    temperature_slot: u32,   // runtime slot: temperature as f32 bits
    seed_slot: u32,          // runtime slot: u32 seed
    index_passes: u32,       // passes of the index search: base-16 digits of n - 1
}

// WG comes from src/kernels/sample.rs (wgsl_consts).
const KEY_NEG_INF: u32 = 0x007fffffu;
const KEY_POS_INF: u32 = 0xff800000u;
const KEY_NONE: u32 = 0xffffffffu;   // a threshold past every sampling key
const MIN_TEMPERATURE: f32 = 1e-20;  // below: greedy (keeps the division clear of subnormals)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;

var<workgroup> red_key: array<u32, 256>;
var<workgroup> red_idx: array<u32, 256>;
var<workgroup> red_a: array<vec4<f32>, 256>;
var<workgroup> red_b: array<vec4<f32>, 256>;
var<workgroup> group_sums: array<vec4<f32>, 64>;  // first-level sums: 16 groups x 4 vec4
var<workgroup> lanes: array<vec4<f32>, 4>;   // the 16 lane sums of the last sweep
var<workgroup> winner: vec2<u32>;            // (key, index) of the row's largest element

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Order-preserving key of a non-NaN float; -0 and +0 share one key.
fn key_of(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if ((b & 0x7fffffffu) == 0u) { return 0x80000000u; }
    if ((b & 0x80000000u) != 0u) { return ~b; }
    return b | 0x80000000u;
}

fn key_argmax(v: f32) -> u32 {
    return select(key_of(v), 0xffffffffu, is_nan(v));
}

fn key_sample(v: f32) -> u32 {
    return select(key_of(v), KEY_NEG_INF, is_nan(v));
}

// Unnormalised probability of logit v: exp((v - m) / T), 0 for NaN and -inf.
fn weight(v: f32, m: f32, temp: f32) -> f32 {
    if (is_nan(v)) { return 0.0; }
    return exp((v - m) / temp);
}

// PCG hash (O'Neill's permuted congruential step, as in Jarkko & Olano 2020).
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// The row's largest key and the lowest index holding it, left in `winner` for everyone.
// Uniform control flow only (barriers).
fn row_max(base: u32, lid: u32, sampling: bool) {
    var bk = 0u;            // below every real key, so the first element always wins
    var bi = 0xffffffffu;   // invocations without elements (n < 256) keep this and never win
    // Strided walk: indices past the row's end belong to no invocation.
    for (var i = lid; i < p.n; i = i + WG) {
        let v = logits[base + i];
        let k = select(key_argmax(v), key_sample(v), sampling);
        if (k > bk) {
            bk = k;
            bi = i;
        }
    }
    red_key[lid] = bk;
    red_idx[lid] = bi;
    workgroupBarrier();
    // Two levels of 16-way fan-in (3 barriers rather than a binary tree's 8): invocation g < 16
    // combines entries 16g .. 16g + 15, then invocation 0 combines the 16 results.
    if (lid < 16u) {
        bk = red_key[lid * 16u];
        bi = red_idx[lid * 16u];
        for (var j = 1u; j < 16u; j = j + 1u) {
            let ok = red_key[lid * 16u + j];
            let oi = red_idx[lid * 16u + j];
            if (ok > bk || (ok == bk && oi < bi)) {
                bk = ok;
                bi = oi;
            }
        }
        red_key[lid * 16u] = bk;
        red_idx[lid * 16u] = bi;
    }
    workgroupBarrier();
    if (lid == 0u) {
        for (var g = 1u; g < 16u; g = g + 1u) {
            let ok = red_key[g * 16u];
            let oi = red_idx[g * 16u];
            if (ok > bk || (ok == bk && oi < bi)) {
                bk = ok;
                bi = oi;
            }
        }
        winner = vec2<u32>(bk, bi);
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, nwg);
    // Excess workgroups of the wrapped grid leave; the test is uniform (workgroup id only),
    // so the barriers in row_max stay legal.
    if (row >= p.rows) { return; }
    row_max(row * p.n, lid, false);
    if (lid == 0u) {
        out[row] = winner.y;
    }
}

// Sums the four vec4 partials of every invocation over the workgroup, in a fixed order, into
// `lanes`. Two levels of 16-way fan-in: invocation g < 16 adds the partials of invocations
// 16g .. 16g + 15 in order, then invocation 0 adds those 16 results in order. Workgroup memory
// holds two vec4 per invocation (8 KiB), so the first level runs twice. 5 barriers.
fn reduce_lanes(a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, lid: u32) {
    red_a[lid] = a0;
    red_b[lid] = a1;
    workgroupBarrier();
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    if (lid < 16u) {
        for (var j = 0u; j < 16u; j = j + 1u) {
            s0 = s0 + red_a[lid * 16u + j];
            s1 = s1 + red_b[lid * 16u + j];
        }
    }
    workgroupBarrier();
    red_a[lid] = a2;
    red_b[lid] = a3;
    workgroupBarrier();
    if (lid < 16u) {
        for (var j = 0u; j < 16u; j = j + 1u) {
            s2 = s2 + red_a[lid * 16u + j];
            s3 = s3 + red_b[lid * 16u + j];
        }
        group_sums[lid * 4u] = s0;
        group_sums[lid * 4u + 1u] = s1;
        group_sums[lid * 4u + 2u] = s2;
        group_sums[lid * 4u + 3u] = s3;
    }
    workgroupBarrier();
    if (lid < 4u) {
        var t = vec4<f32>(0.0);
        for (var g = 0u; g < 16u; g = g + 1u) {
            t = t + group_sums[g * 4u + lid];
        }
        lanes[lid] = t;
    }
    workgroupBarrier();
}

// One pass over the row. Element i weighs 0 unless key >= live_key (the stage's floor, and in
// value searches also the smallest threshold, below which an element reaches no lane); then 1
// (counting) or e_i (mass). Lane j sums the weights of the elements that pass test j:
// key >= t[j] (value search) or i < t[j] (index search). Results in `lanes`. Elements of
// weight 0 are skipped without computing anything (they would add exactly 0), and so are
// indices from `end` on (past the largest index threshold). Uniform control flow only.
fn sweep(base: u32, lid: u32, m: f32, temp: f32, mass: bool, by_index: bool, live_key: u32,
         end: u32, t0: vec4<u32>, t1: vec4<u32>, t2: vec4<u32>, t3: vec4<u32>) {
    let zero = vec4<f32>(0.0);
    var a0 = zero;
    var a1 = zero;
    var a2 = zero;
    var a3 = zero;
    // Strided walk: indices past `end` (at most the row's end) belong to no invocation.
    for (var i = lid; i < end; i = i + WG) {
        let v = logits[base + i];
        let k = key_sample(v);
        if (k < live_key) { continue; }
        var w = 1.0;
        if (mass) { w = weight(v, m, temp); }
        let wv = vec4<f32>(w);
        if (by_index) {
            let q = vec4<u32>(i);
            a0 = a0 + select(zero, wv, q < t0);
            a1 = a1 + select(zero, wv, q < t1);
            a2 = a2 + select(zero, wv, q < t2);
            a3 = a3 + select(zero, wv, q < t3);
        } else {
            let q = vec4<u32>(k);
            a0 = a0 + select(zero, wv, q >= t0);
            a1 = a1 + select(zero, wv, q >= t1);
            a2 = a2 + select(zero, wv, q >= t2);
            a3 = a3 + select(zero, wv, q >= t3);
        }
    }
    reduce_lanes(a0, a1, a2, a3, lid);
}

fn lane(j: u32) -> f32 {
    return lanes[j / 4u][j % 4u];
}

// The search stages, in order; a pass's stage follows from its number.
const STAGE_TOP_K: u32 = 0u;   // count search for tau_k
const STAGE_MASS: u32 = 1u;    // one pass: Z_k, the mass of {key >= tau_k}
const STAGE_TOP_P: u32 = 2u;   // mass search for tau_c
const STAGE_DRAW: u32 = 3u;    // index search for the drawn token

@compute @workgroup_size(WG)
fn sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, nwg);
    // Uniform early exit for the wrapped grid's excess workgroups (see argmax).
    if (row >= p.rows) { return; }
    let base = row * p.n;
    row_max(base, lid, true);
    // Uniform copies: the branches below decide whether the barriers that follow run.
    let win = workgroupUniformLoad(&winner);
    let temp = bitcast<f32>(runtime_slot(p.temperature_slot));
    if (!(temp >= MIN_TEMPERATURE) || p.top_k == 1u || win.x <= KEY_NEG_INF || win.x >= KEY_POS_INF) {
        if (lid == 0u) { out[row] = win.y; }
        return;
    }
    let m = logits[base + win.y];   // the largest logit, finite here

    let k_on = p.top_k > 1u && p.top_k < p.n;
    let p_on = p.top_p < 1.0;
    let k_passes = select(0u, 8u, k_on);
    let p_passes = select(0u, 8u, p_on);
    let mass_pass = k_passes;
    let draw_from = k_passes + 1u + p_passes;
    let total = draw_from + p.index_passes;

    // Search state. Every invocation computes the same values from the same lane sums.
    var lo = 0u;           // the current range [lo, hi]; the property holds at lo
    var hi = win.x;        // top-k: keys in [0, max key]; count(key >= 0) = n >= k
    if (!k_on) { hi = 0u; } // no top-k: tau_k = 0 keeps everything; the first pass is the mass pass
    var lo_sum = 0.0;      // the lane sum at lo
    var tau_k = 0u;
    var z_k = 0.0;
    var tau_c = 0u;
    var z_c = 0.0;
    var draw_at = 0.0;      // the draw's target: u * Z_c

    for (var ps = 0u; ps < total; ps = ps + 1u) {
        var stage = STAGE_DRAW;
        if (ps < mass_pass) { stage = STAGE_TOP_K; }
        else if (ps == mass_pass) { stage = STAGE_MASS; }
        else if (ps < draw_from) { stage = STAGE_TOP_P; }
        var floor_key = 0u;
        var goal = f32(p.top_k);
        if (stage == STAGE_MASS) { floor_key = lo; }
        if (stage == STAGE_TOP_P) { floor_key = tau_k; goal = p.top_p * z_k; }
        if (stage == STAGE_DRAW) { floor_key = tau_c; goal = draw_at; }
        // Sixteen thresholds lo + j * stride, j = 0..15; those past hi are invalid: KEY_NONE
        // (no key reaches it) in value searches, 0 (no index is below it) in the draw.
        // stride <= 2^28, so j * stride cannot overflow.
        let stride = (hi - lo) / 16u + 1u;
        let width = vec4<u32>(hi - lo);
        let none = vec4<u32>(select(KEY_NONE, 0u, stage == STAGE_DRAW));
        let j0 = vec4<u32>(0u, 1u, 2u, 3u) * stride;
        let j1 = vec4<u32>(4u, 5u, 6u, 7u) * stride;
        let j2 = vec4<u32>(8u, 9u, 10u, 11u) * stride;
        let j3 = vec4<u32>(12u, 13u, 14u, 15u) * stride;
        // Value searches: keys below lo (and the floor) reach no lane. Draw: indices from the
        // largest valid threshold on reach no lane.
        var live_key = max(floor_key, lo);
        var end = p.n;
        if (stage == STAGE_DRAW) {
            live_key = floor_key;
            end = min(p.n, lo + min((hi - lo) / stride, 15u) * stride);
        }
        sweep(base, lid, m, temp, stage != STAGE_TOP_K, stage == STAGE_DRAW, live_key, end,
              select(none, vec4<u32>(lo) + j0, j0 <= width), select(none, vec4<u32>(lo) + j1, j1 <= width),
              select(none, vec4<u32>(lo) + j2, j2 <= width), select(none, vec4<u32>(lo) + j3, j3 <= width));
        // The largest valid threshold with the property: sum >= goal for value searches (the
        // sum falls as the threshold rises), prefix <= target for the draw (it rises).
        var best = 0u;
        for (var j = 1u; j < 16u; j = j + 1u) {
            let ok = select(lane(j) >= goal, lane(j) <= goal, stage == STAGE_DRAW);
            if (j * stride <= hi - lo && ok) { best = j; }
        }
        var next_hi = hi;
        if (best < 15u && (best + 1u) * stride <= hi - lo) { next_hi = lo + (best + 1u) * stride - 1u; }
        lo = lo + best * stride;
        hi = next_hi;
        lo_sum = lane(best);

        // Stage transitions, set up for the next pass.
        if (stage == STAGE_TOP_K && ps + 1u == mass_pass) {
            hi = lo;                       // the mass pass looks at tau_k = lo alone
        }
        var to_draw = false;
        if (stage == STAGE_MASS) {
            tau_k = lo;
            z_k = lo_sum;
            tau_c = tau_k;
            z_c = z_k;
            if (p_on) { hi = win.x; } else { to_draw = true; }
        }
        if (stage == STAGE_TOP_P && ps + 1u == draw_from) {
            tau_c = lo;
            z_c = lo_sum;
            to_draw = true;
        }
        if (to_draw) {
            let u = f32(pcg(pcg(runtime_slot(p.seed_slot)) + row) >> 8u) * (1.0 / 16777216.0);
            draw_at = u * z_c;
            if (draw_at >= z_c) { draw_at = bitcast<f32>(bitcast<u32>(z_c) - 1u); }
            lo = 0u;
            hi = p.n - 1u;
        }
    }
    if (lid == 0u) {
        // lo is the drawn index (0 when n == 1: no draw passes). It lies in C with e > 0;
        // anything else would be a compiler breaking the sums' consistency: take the argmax.
        let v = logits[base + lo];
        let ok = lo < p.n && key_sample(v) >= tau_c && weight(v, m, temp) > 0.0;
        out[row] = select(win.y, lo, ok);
    }
}
