// Scaled dot-product attention, out = softmax(scale · q kᵀ + masks) v per head, fused so that
// the Lq×Lk score matrix never exists in memory.
//
// Layout (token-major, as linear layers produce it; all f32, read as vec4 since the head size
// d is a multiple of 4):
//   q [Lq, H, d], k and v [Lk, Hkv, d], out [Lq, H, d]; query head h reads KV head
//   h / (H / Hkv) (grouped-query attention; Hkv = H is plain multi-head attention).
// Positions: query i sits at position past + i and, when causal, sees keys 0..=past + i.
// `past` is a node parameter (Lk - Lq: the queries are the last positions) or, for a KV cache,
// a runtime slot; then only keys 0..past + Lq exist, whatever the cache's capacity Lk.
// Padding mask (entry points *_mask): mask[j] == 0 (u32; 0.0 or -0.0 for f32) hides key j.
// A query that sees no key at all gets zeros.
//
// Numerics: the online softmax keeps, per query, the running max m of the scores seen, the
// running sum l of exp(score - m) and the output accumulator scaled by the same exp(-m);
// when a tile raises the max, l and the accumulator are multiplied by exp(m_old - m_new) <= 1.
// Every exp() argument is <= 0, so nothing overflows, however large the logits. Scores are
// clamped to [-BIG, BIG] (an overflowing dot product, +-inf, becomes a large finite score
// rather than producing inf - inf = NaN), and masked keys are skipped by comparison with the
// MASKED marker, never multiplied by zero (0 * inf would be NaN).
//
// Entry points:
// - attention_prefill(_mask): one workgroup per (tile of 64 queries, head). K and V tiles
//   are staged in workgroup memory and shared by the 64 queries; each invocation owns one
//   query, its scaled q row and its accumulator in private memory.
// - attention_decode(_mask): few queries against a long KV cache. The key range of each
//   (query, head) is split into `splits` parts, one workgroup each (so even one query keeps
//   many workgroups busy); a workgroup scores 64 keys at a time, one per invocation, and
//   accumulates the output with the invocations spread over the head's vec4 columns. It
//   writes an unnormalised partial output with its (max, sum).
// - attention_merge: combines the parts: out = Σ_s acc_s e^(m_s - M) / Σ_s l_s e^(m_s - M).
//
// The mask binding exists only in the *_mask entry points (a shader that reads a binding at
// all needs it in its layout), so the shared work lives in functions and the entry points
// differ in one line.

struct Params {
    lq: u32,          // queries (rows of q and out)
    lk: u32,          // rows of k and v (a KV cache's capacity)
    heads: u32,       // H
    kv_heads: u32,    // Hkv
    d4: u32,          // head size / 4
    group: u32,       // H / Hkv
    causal: u32,      // 1: query i sees keys 0..=past + i
    past: u32,        // position of query 0, when past_slot is NO_SLOT
    past_slot: u32,   // runtime slot holding the position of query 0, or NO_SLOT
    scale: f32,
    mask_f32: u32,    // 1: the mask holds f32 bits, else u32
    bk: u32,          // prefill: keys per tile (TILE_VEC4 / d4, at most MAX_BK)
    splits: u32,      // decode and merge: parts of the key range
}

const NO_SLOT: u32 = 0xffffffffu;
const MASKED: f32 = -3.4028235e38;
const BIG: f32 = 3.0e38;
// Head size at most 128 (4 · MAX_D4): the private q and accumulator rows are this long.
const MAX_D4: u32 = 32u;
// Prefill: 64 queries per workgroup, one per invocation. 64 is a multiple of every subgroup
// size we meet (8, 32, 64), and 64 queries share each K/V tile loaded into workgroup memory.
const BQ: u32 = 64u;
// K and V tiles: 480 vec4 each, 15 KiB together, plus the tile's key flags: within the 16 KiB
// of workgroup storage that WebGPU guarantees. Tile length = 480 / d4 keys (30 for d = 64).
const TILE_VEC4: u32 = 480u;
const MAX_BK: u32 = 64u;
// Decode: 64 keys scored per step, one per invocation.
const DWG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> rt: array<vec4<u32>, 4>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> mask: array<u32>;
// The merge's only input sits where q sits for the other entry points.
@group(0) @binding(3) var<storage, read> partials: array<vec4<f32>>;

// ---------------------------------------------------------------------------------------
// Shared helpers

fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// Position of query 0.
fn first_position() -> u32 {
    if (p.past_slot == NO_SLOT) {
        return p.past;
    }
    return rt[p.past_slot / 4u][p.past_slot % 4u];
}

// Keys that exist: all rows of k, or a cache's first past + Lq rows. The host checks that
// past + Lq fits the cache before each run; min() keeps a bad slot value from reading past
// the buffer on backends without robust buffer access.
fn key_count() -> u32 {
    if (p.past_slot == NO_SLOT) {
        return p.lk;
    }
    return min(first_position() + p.lq, p.lk);
}

// One past the last key query i may see.
fn key_end(i: u32) -> u32 {
    let n = key_count();
    if (p.causal == 1u) {
        return min(n, first_position() + i + 1u);
    }
    return n;
}

fn key_kept(j: u32) -> bool {
    // Callers only ask for j < Lk, the mask's length.
    let bits = mask[j];
    if (p.mask_f32 == 1u) {
        return (bits & 0x7fffffffu) != 0u;
    }
    return bits != 0u;
}

// Row offset (in vec4) of token j, KV head hk in k and v.
fn kv_row(j: u32, hk: u32) -> u32 {
    return (j * p.kv_heads + hk) * p.d4;
}

// ---------------------------------------------------------------------------------------
// Prefill

var<workgroup> k_tile: array<vec4<f32>, TILE_VEC4>;
var<workgroup> v_tile: array<vec4<f32>, TILE_VEC4>;
var<workgroup> keep_tile: array<u32, MAX_BK>;

var<private> q_row: array<vec4<f32>, MAX_D4>;
var<private> acc: array<vec4<f32>, MAX_D4>;
var<private> scores: array<f32, MAX_BK>;
var<private> m_run: f32;
var<private> l_run: f32;

// A workgroup's (query tile, head). Everything here is the same for the whole workgroup, so
// the tile loop bounded by `kend` keeps its barriers in uniform control flow.
struct QueryTile {
    inside: bool,  // false for the excess groups of a wrapped grid
    h: u32,
    hk: u32,
    q0: u32,       // first query of the tile
    kend: u32,     // one past the last key any query of the tile sees
}

fn query_tile(wid: vec3<u32>, nwg: vec3<u32>) -> QueryTile {
    let g = flat_group(wid, nwg);
    let h = g % p.heads;
    let q0 = (g / p.heads) * BQ;
    var kend = key_count();
    if (p.causal == 1u) {
        kend = min(kend, first_position() + min(q0 + BQ, p.lq));
    }
    return QueryTile(q0 < p.lq, h, h / p.group, q0, kend);
}

fn prefill_begin(t: QueryTile, lid: u32) {
    let i = t.q0 + lid;
    m_run = MASKED;
    l_run = 0.0;
    for (var c = 0u; c < p.d4; c = c + 1u) {
        acc[c] = vec4<f32>(0.0);
        // Invocations past the last query (a partial last tile) keep a zero row: they take
        // part in the tile loads and barriers but score nothing.
        if (i < p.lq) {
            q_row[c] = q[(i * p.heads + t.h) * p.d4 + c] * p.scale;
        }
    }
}

// Stages keys k0..k0 + bk of the tile's KV head; rows past kend (the last, partial tile) are
// zero-filled and never scored.
fn load_kv_tile(t: QueryTile, k0: u32, lid: u32) {
    let n = p.bk * p.d4;
    for (var e = lid; e < n; e = e + BQ) {
        let j = k0 + e / p.d4;
        var kv = vec4<f32>(0.0);
        var vv = vec4<f32>(0.0);
        if (j < t.kend) {
            let src = kv_row(j, t.hk) + e % p.d4;
            kv = k[src];
            vv = v[src];
        }
        k_tile[e] = kv;
        v_tile[e] = vv;
    }
    if (lid < p.bk) {
        keep_tile[lid] = 1u;
    }
}

// The padding mask of the tile's keys (the *_mask entry point only), by the invocation that
// set the same flag to 1 in load_kv_tile.
fn load_mask_tile(t: QueryTile, k0: u32, lid: u32) {
    if (lid < p.bk && k0 + lid < t.kend) {
        keep_tile[lid] = select(0u, 1u, key_kept(k0 + lid));
    }
}

// One query against the staged tile: scores, then the online-softmax update.
fn attend_tile(t: QueryTile, k0: u32, lid: u32) {
    let i = t.q0 + lid;
    if (i >= p.lq) { return; }
    let end = key_end(i);
    let cnt = min(p.bk, t.kend - k0);
    var tmax = MASKED;
    for (var r = 0u; r < cnt; r = r + 1u) {
        var s = MASKED;
        if (k0 + r < end && keep_tile[r] != 0u) {
            let base = r * p.d4;
            var dotp = 0.0;
            for (var c = 0u; c < p.d4; c = c + 1u) {
                dotp = dotp + dot(q_row[c], k_tile[base + c]);
            }
            s = clamp(dotp, -BIG, BIG);
            tmax = max(tmax, s);
        }
        scores[r] = s;
    }
    // No key of this tile is visible to this query (causal, padding): nothing changes.
    if (tmax == MASKED) { return; }
    let m_new = max(m_run, tmax);
    // exp(m_old - m_new) <= 1; on the first visible tile m_old is MASKED and this is 0,
    // harmless since l and the accumulator are still 0.
    let alpha = exp(m_run - m_new);
    l_run = l_run * alpha;
    for (var c = 0u; c < p.d4; c = c + 1u) {
        acc[c] = acc[c] * alpha;
    }
    for (var r = 0u; r < cnt; r = r + 1u) {
        if (scores[r] != MASKED) {
            let w = exp(scores[r] - m_new);
            l_run = l_run + w;
            let base = r * p.d4;
            for (var c = 0u; c < p.d4; c = c + 1u) {
                acc[c] = acc[c] + w * v_tile[base + c];
            }
        }
    }
    m_run = m_new;
}

fn prefill_store(t: QueryTile, lid: u32) {
    let i = t.q0 + lid;
    if (i >= p.lq) { return; }
    // l is 0 only when the query saw no key: its output is zeros, not 0/0.
    let inv = select(1.0 / l_run, 0.0, l_run == 0.0);
    for (var c = 0u; c < p.d4; c = c + 1u) {
        out[(i * p.heads + t.h) * p.d4 + c] = acc[c] * inv;
    }
}

@compute @workgroup_size(64)
fn attention_prefill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let t = query_tile(wid, nwg);
    if (!t.inside) { return; }
    prefill_begin(t, lid);
    for (var k0 = 0u; k0 < t.kend; k0 = k0 + p.bk) {
        workgroupBarrier(); // everyone is done with the previous tile
        load_kv_tile(t, k0, lid);
        workgroupBarrier(); // the tile is complete
        attend_tile(t, k0, lid);
    }
    prefill_store(t, lid);
}

@compute @workgroup_size(64)
fn attention_prefill_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let t = query_tile(wid, nwg);
    if (!t.inside) { return; }
    prefill_begin(t, lid);
    for (var k0 = 0u; k0 < t.kend; k0 = k0 + p.bk) {
        workgroupBarrier();
        load_kv_tile(t, k0, lid);
        load_mask_tile(t, k0, lid);
        workgroupBarrier();
        attend_tile(t, k0, lid);
    }
    prefill_store(t, lid);
}

// ---------------------------------------------------------------------------------------
// Decode: split keys, then merge

var<workgroup> q_shared: array<vec4<f32>, MAX_D4>;
var<workgroup> p_shared: array<f32, DWG>;
var<workgroup> acc_shared: array<vec4<f32>, DWG>;

// A workgroup's (split, head, query) and its key range. Uniform over the workgroup.
struct KeySpan {
    inside: bool,  // false for the excess groups of a wrapped grid
    s: u32,
    h: u32,
    hk: u32,
    i: u32,
    start: u32,
    end: u32,
}

fn key_span(wid: vec3<u32>, nwg: vec3<u32>) -> KeySpan {
    let g = flat_group(wid, nwg);
    let s = g % p.splits;
    let h = (g / p.splits) % p.heads;
    let i = g / (p.splits * p.heads);
    let n = key_end(min(i, p.lq - 1u));
    // Parts of whole 64-key steps, as even as that allows; with few keys the last parts are
    // empty and their workgroups only write (max, sum) = (MASKED, 0).
    let chunk = max((n + p.splits - 1u) / p.splits + DWG - 1u, DWG) / DWG * DWG;
    let start = min(s * chunk, n);
    return KeySpan(i < p.lq, s, h, h / p.group, i, start, min(start + chunk, n));
}

// Columns of the accumulator: invocation lid owns vec4 column lid % d4 for the keys of
// parity lid / d4 (of `ways` parities), so all 64 invocations share the weighted sum of V.
struct Lane {
    c: u32,
    part: u32,
    ways: u32,
}

fn lane(lid: u32) -> Lane {
    return Lane(lid % p.d4, lid / p.d4, DWG / p.d4);
}

var<private> d_m: f32;
var<private> d_l: f32;
var<private> d_acc: vec4<f32>;

fn decode_begin(t: KeySpan, lid: u32) {
    if (lid < p.d4) {
        q_shared[lid] = q[(t.i * p.heads + t.h) * p.d4 + lid] * p.scale;
    }
    d_m = MASKED;
    d_l = 0.0;
    d_acc = vec4<f32>(0.0);
    workgroupBarrier();
}

// Keys k0..k0 + 64: invocation lid scores key k0 + lid (when `keep`), then all update the
// running max and sum (identically, from workgroup memory) and their accumulator columns.
fn decode_step(t: KeySpan, k0: u32, keep: bool, lid: u32) {
    var s = MASKED;
    if (keep) {
        let row = kv_row(k0 + lid, t.hk);
        var dotp = 0.0;
        for (var c = 0u; c < p.d4; c = c + 1u) {
            dotp = dotp + dot(q_shared[c], k[row + c]);
        }
        s = clamp(dotp, -BIG, BIG);
    }
    p_shared[lid] = s;
    workgroupBarrier();
    let cnt = min(DWG, t.end - k0);
    var tmax = MASKED;
    for (var r = 0u; r < cnt; r = r + 1u) {
        tmax = max(tmax, p_shared[r]);
    }
    workgroupBarrier(); // all have read the scores before they become weights
    let m_new = max(d_m, tmax);
    p_shared[lid] = select(exp(s - m_new), 0.0, s == MASKED);
    workgroupBarrier();
    // When the whole step is masked, m_new == d_m and alpha = 1.
    let alpha = exp(d_m - m_new);
    var sum = 0.0;
    for (var r = 0u; r < cnt; r = r + 1u) {
        sum = sum + p_shared[r];
    }
    d_l = d_l * alpha + sum;
    // This invocation's keys: r = part, part + ways, ... (none when part >= ways, which
    // happens when d4 does not divide 64).
    let ln = lane(lid);
    d_acc = d_acc * alpha;
    for (var r = ln.part; r < cnt; r = r + ln.ways) {
        let w = p_shared[r];
        // Weight 0 (masked key, or exp underflow): skip the load.
        if (w != 0.0) {
            d_acc = d_acc + w * v[kv_row(k0 + r, t.hk) + ln.c];
        }
    }
    d_m = m_new;
    workgroupBarrier(); // all have read the weights before the next step overwrites them
}

// Sums the accumulator parts and writes this split's partial: columns first (splits·Lq·H rows
// of d4 vec4), then one (max, sum, 0, 0) vec4 per row.
fn decode_store(t: KeySpan, lid: u32) {
    let ln = lane(lid);
    acc_shared[lid] = d_acc;
    workgroupBarrier();
    let row = (t.s * p.lq + t.i) * p.heads + t.h;
    if (lid < p.d4) {
        var total = vec4<f32>(0.0);
        for (var w = 0u; w < ln.ways; w = w + 1u) {
            total = total + acc_shared[w * p.d4 + lid];
        }
        out[row * p.d4 + lid] = total;
    }
    if (lid == 0u) {
        out[p.splits * p.lq * p.heads * p.d4 + row] = vec4<f32>(d_m, d_l, 0.0, 0.0);
    }
}

@compute @workgroup_size(64)
fn attention_decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let t = key_span(wid, nwg);
    if (!t.inside) { return; }
    decode_begin(t, lid);
    for (var k0 = t.start; k0 < t.end; k0 = k0 + DWG) {
        decode_step(t, k0, k0 + lid < t.end, lid);
    }
    decode_store(t, lid);
}

@compute @workgroup_size(64)
fn attention_decode_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let t = key_span(wid, nwg);
    if (!t.inside) { return; }
    decode_begin(t, lid);
    for (var k0 = t.start; k0 < t.end; k0 = k0 + DWG) {
        // Keys past the span are not looked up in the mask (nor in k).
        let j = k0 + lid;
        var keep = j < t.end;
        if (keep) {
            keep = key_kept(j);
        }
        decode_step(t, k0, keep, lid);
    }
    decode_store(t, lid);
}

// One invocation per output vec4 (Lq·H·d4 of them), 64 per workgroup, 2-D grid.
@compute @workgroup_size(64)
fn attention_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let idx = flat_group(wid, nwg) * 64u + lid;
    let rows = p.lq * p.heads;
    // The grid is rounded up to whole workgroups: skip the excess.
    if (idx >= rows * p.d4) { return; }
    let c = idx % p.d4;
    let row = idx / p.d4;
    let stats = p.splits * rows * p.d4;
    var mx = MASKED;
    for (var s = 0u; s < p.splits; s = s + 1u) {
        let st = partials[stats + s * rows + row];
        if (st.y > 0.0) {
            mx = max(mx, st.x);
        }
    }
    var num = vec4<f32>(0.0);
    var den = 0.0;
    for (var s = 0u; s < p.splits; s = s + 1u) {
        let st = partials[stats + s * rows + row];
        // Empty parts (sum 0) are skipped; the others are rescaled to the common max.
        if (st.y > 0.0) {
            let w = exp(st.x - mx);
            num = num + w * partials[(s * rows + row) * p.d4 + c];
            den = den + w * st.y;
        }
    }
    out[idx] = select(num / den, vec4<f32>(0.0), den == 0.0);
}
