// Scaled dot-product attention, out = softmax(scale · q kᵀ + masks) v per head, fused so that
// the Lq×Lk score matrix never exists in memory.
//
// Layout (token-major, as linear layers produce it; f32, or k and v in f16 in the attention_f16
// family, all read as vec4 since the head size d is a multiple of 4):
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
// - attention_prefill(_mask): one workgroup per (tile of queries, head). K and V tiles are
//   staged in workgroup memory and shared by the tile's queries; each invocation owns up to
//   64 dimensions of one query (see "Prefill" below).
// - attention_decode(_mask): few queries against a long KV cache. The key range of each
//   (query, head) is split into `splits` parts, one workgroup each (so even one query keeps
//   many workgroups busy); a workgroup scores 64 keys at a time, one per invocation, and
//   accumulates the output with the invocations spread over the head's vec4 columns. It
//   writes an unnormalised partial output with its (max, sum).
// - attention_merge: combines the parts: out = Σ_s acc_s e^(m_s - M) / Σ_s l_s e^(m_s - M).
// - attention_decode_single(_mask): split-key decode in one part: the workgroup's sums are the
//   whole softmax, so it writes the normalised output itself (acc / l, what the merge of a
//   single part computes) and no merge pass runs.
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
    bk: u32,          // prefill: keys per tile
    splits: u32,      // decode and merge: parts of the key range
    tq: u32,          // prefill: invocations per query, T = ceil(d4 / SLICE4)
    qpw: u32,         // prefill: queries per workgroup, 64 / T
    rs: u32,          // prefill: padded tile row length in vec4, T · SLICE4
}

const NO_SLOT: u32 = 0xffffffffu;
// The lowest f32 exactly (-3.4028235e38 rounds past it, which browsers' WGSL compilers refuse).
const MASKED: f32 = -3.4028234663852886e38;
const BIG: f32 = 3.0e38;
// Head size at most 256 (4 · MAX_D4): the decode kernel keeps the query in workgroup memory
// and spreads the output's vec4 columns over its 64 invocations (and the prefill kernel
// gives a query at most 4 invocations).
// Every kernel: 64 invocations per workgroup, a multiple of every subgroup size we meet
// (8 on lavapipe, 32 on NVIDIA, 64 on AMD).
// Prefill workgroup memory: K and V tiles of 336 vec4 each (5.25 KiB each) and the tile's
// partial dot products, up to 21 keys x 64 invocations (5.25 KiB), plus the keys' flags:
// 15.8 KiB, within the 16 KiB that WebGPU guarantees. Keys per tile: bk = min(336 / rs, 21)
// with rs = 16·T the padded row length in vec4: 21 keys for d <= 64, 10 for d <= 128, 5 for
// d <= 256.
// Prefill: SLICE4 = 16 vec4 (64 head dimensions) of the query and of the output per invocation.
// Decode: DWG = 64 keys scored per step, one per invocation.
// MAX_D4, WG, SLICE4, TILE_VEC4, PART_F32, MAX_BK and DWG come from src/kernels/attention.rs
// (wgsl_consts).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> q: array<vec4<f32>>;
// k and v (bindings 4 and 5) and their loads `load_k`/`load_v` come from the prelude:
// attention_kv32.wgsl (f32) or attention_kv16.wgsl (f16 caches, family attention_f16).
@group(0) @binding(6) var<storage, read> mask: array<u32>;
// The merge's only input sits where q sits for the other entry points.
@group(0) @binding(3) var<storage, read> partials: array<vec4<f32>>;

// ---------------------------------------------------------------------------------------
// Shared helpers

// Position of query 0.
fn first_position() -> u32 {
    if (p.past_slot == NO_SLOT) {
        return p.past;
    }
    return runtime_slot(p.past_slot);
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
//
// A workgroup of 64 invocations takes qpw = 64 / T queries of one head, with
// T = ceil(d / 64) invocations per query, each owning a 64-dimension slice (16 vec4) of the
// query row and of the output accumulator: 128 floats in registers, whatever the head size
// (d <= 64: T = 1, 64 queries per workgroup; d = 128: T = 2, 32 queries; d = 256: T = 4).
// The slice loops have a constant trip count, so compilers unroll them and keep the arrays in
// registers; head sizes that are not a multiple of 64 are padded with zeros rather than
// guarded, which keeps the inner loops branch-free (d = 32 does twice the arithmetic it
// needs; d = 64 and 128, the common sizes, none). Per tile of bk keys:
//   1. K and V rows of the tile are staged in workgroup memory, each row padded with zeros to
//      16·T vec4 so that every slice is 16 whole vec4;
//   2. each invocation writes its slice's partial dot product with every key of the tile;
//   3. each invocation sums its query's T partials (all T in the same order, so the T
//      invocations of a query agree exactly), takes the tile max, rescales, and accumulates
//      exp(s - m) · v over its slice. Inside a tile every invocation of a query reads the
//      same K and V rows, so those loads are uniform (broadcast) across the workgroup.

var<workgroup> k_tile: array<vec4<f32>, TILE_VEC4>;
var<workgroup> v_tile: array<vec4<f32>, TILE_VEC4>;
var<workgroup> part: array<f32, PART_F32>;
var<workgroup> keep_tile: array<u32, MAX_BK>;

var<private> q_s: array<vec4<f32>, SLICE4>;
var<private> acc_s: array<vec4<f32>, SLICE4>;
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
    let q0 = (g / p.heads) * p.qpw;
    var kend = key_count();
    if (p.causal == 1u) {
        kend = min(kend, first_position() + min(q0 + p.qpw, p.lq));
    }
    return QueryTile(q0 < p.lq, h, h / p.group, q0, kend);
}

// This invocation's query (qi within the tile, i overall) and slice ts.
struct Lane {
    qi: u32,
    ts: u32,
    i: u32,
    // False past the last query (a partial last tile) and for the invocations left over when
    // T does not divide 64: they take part in loads and barriers but own no query.
    live: bool,
}

fn prefill_lane(t: QueryTile, lid: u32) -> Lane {
    let qi = lid / p.tq;
    let i = t.q0 + qi;
    return Lane(qi, lid % p.tq, i, qi < p.qpw && i < p.lq);
}

// Column `col` (in vec4) of query i, head h, scaled; zero past the head size.
fn q_at(i: u32, h: u32, col: u32) -> vec4<f32> {
    if (col < p.d4) {
        return q[(i * p.heads + h) * p.d4 + col] * p.scale;
    }
    return vec4<f32>(0.0);
}

fn prefill_begin(t: QueryTile, ln: Lane) {
    m_run = MASKED;
    l_run = 0.0;
    for (var c = 0u; c < SLICE4; c = c + 1u) {
        acc_s[c] = vec4<f32>(0.0);
        q_s[c] = vec4<f32>(0.0);
        if (ln.live) {
            q_s[c] = q_at(ln.i, t.h, ln.ts * SLICE4 + c);
        }
    }
}

// Stages keys k0..k0 + bk of the tile's KV head, rows `rs` vec4 apart. Keys past kend (the
// last, partial tile) and columns past d4 (the row padding) are zeros.
fn load_kv_tile(t: QueryTile, k0: u32, lid: u32) {
    let n = p.bk * p.rs;
    for (var e = lid; e < n; e = e + WG) {
        let j = k0 + e / p.rs;
        let col = e % p.rs;
        var kv = vec4<f32>(0.0);
        var vv = vec4<f32>(0.0);
        if (j < t.kend && col < p.d4) {
            let src = kv_row(j, t.hk) + col;
            kv = load_k(src);
            vv = load_v(src);
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

// Step 2: this slice's partial q·k for every key of the tile.
fn tile_partials(t: QueryTile, k0: u32, ln: Lane, lid: u32) {
    let cnt = min(p.bk, t.kend - k0);
    for (var r = 0u; r < cnt; r = r + 1u) {
        let b = r * p.rs + ln.ts * SLICE4;
        var s = 0.0;
        for (var c = 0u; c < SLICE4; c = c + 1u) {
            s = s + dot(q_s[c], k_tile[b + c]);
        }
        part[r * WG + lid] = s;
    }
}

// The full score of key r of the tile for this invocation's query.
fn tile_score(r: u32, ln: Lane) -> f32 {
    let base = r * WG + ln.qi * p.tq;
    var s = 0.0;
    for (var u = 0u; u < p.tq; u = u + 1u) {
        s = s + part[base + u];
    }
    return clamp(s, -BIG, BIG);
}

// Step 3: the online-softmax update of this query with the tile.
fn attend_tile(t: QueryTile, k0: u32, ln: Lane) {
    if (!ln.live) { return; }
    let end = key_end(ln.i);
    let cnt = min(p.bk, t.kend - k0);
    var tmax = MASKED;
    for (var r = 0u; r < cnt; r = r + 1u) {
        if (k0 + r < end && keep_tile[r] != 0u) {
            tmax = max(tmax, tile_score(r, ln));
        }
    }
    // No key of this tile is visible to this query (causal, padding): nothing changes.
    if (tmax == MASKED) { return; }
    let m_new = max(m_run, tmax);
    // exp(m_old - m_new) <= 1; on the first visible tile m_old is MASKED and this is 0,
    // harmless since l and the accumulator are still 0.
    let alpha = exp(m_run - m_new);
    l_run = l_run * alpha;
    for (var c = 0u; c < SLICE4; c = c + 1u) {
        acc_s[c] = acc_s[c] * alpha;
    }
    for (var r = 0u; r < cnt; r = r + 1u) {
        if (k0 + r < end && keep_tile[r] != 0u) {
            let w = exp(tile_score(r, ln) - m_new);
            l_run = l_run + w;
            let b = r * p.rs + ln.ts * SLICE4;
            for (var c = 0u; c < SLICE4; c = c + 1u) {
                acc_s[c] = acc_s[c] + w * v_tile[b + c];
            }
        }
    }
    m_run = m_new;
}

fn prefill_store(t: QueryTile, ln: Lane) {
    if (!ln.live) { return; }
    // l is 0 only when the query saw no key: its output is zeros, not 0/0.
    let inv = select(1.0 / l_run, 0.0, l_run == 0.0);
    for (var c = 0u; c < SLICE4; c = c + 1u) {
        let col = ln.ts * SLICE4 + c;
        // The last slice may stick out of the head (d4 not a multiple of sl): not stored.
        if (col < p.d4) {
            out[(ln.i * p.heads + t.h) * p.d4 + col] = acc_s[c] * inv;
        }
    }
}

@compute @workgroup_size(64)
fn attention_prefill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let t = query_tile(wid, nwg);
    if (!t.inside) { return; }
    let ln = prefill_lane(t, lid);
    prefill_begin(t, ln);
    for (var k0 = 0u; k0 < t.kend; k0 = k0 + p.bk) {
        workgroupBarrier(); // everyone is done with the previous tile
        load_kv_tile(t, k0, lid);
        workgroupBarrier(); // the tile is complete
        tile_partials(t, k0, ln, lid);
        workgroupBarrier(); // the partial dot products are complete
        attend_tile(t, k0, ln);
    }
    prefill_store(t, ln);
}

@compute @workgroup_size(64)
fn attention_prefill_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let t = query_tile(wid, nwg);
    if (!t.inside) { return; }
    let ln = prefill_lane(t, lid);
    prefill_begin(t, ln);
    for (var k0 = 0u; k0 < t.kend; k0 = k0 + p.bk) {
        workgroupBarrier();
        load_kv_tile(t, k0, lid);
        load_mask_tile(t, k0, lid);
        workgroupBarrier();
        tile_partials(t, k0, ln, lid);
        workgroupBarrier();
        attend_tile(t, k0, ln);
    }
    prefill_store(t, ln);
}

// ---------------------------------------------------------------------------------------
// Decode: split keys, then merge
//
// Per step of 64 keys: invocation lid scores key k0 + lid (a full dot product with the query,
// which sits in workgroup memory); after a barrier every invocation takes the step's max and
// writes its own key's weight; after a second barrier invocation (part, c) accumulates vec4
// column c of the weighted V rows r = part, part + ways, ... (ways = 64 / d4 parts), and the
// sum of their weights. Parts are added up once, when the workgroup stores its partial.

var<workgroup> q_shared: array<vec4<f32>, MAX_D4>;
var<workgroup> s_shared: array<f32, DWG>;
var<workgroup> w_shared: array<f32, DWG>;
var<workgroup> acc_shared: array<vec4<f32>, DWG>;
var<workgroup> l_shared: array<f32, DWG>;

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

// Accumulator lanes: invocation lid owns vec4 column lid % d4 for the keys of part lid / d4.
struct Lane4 {
    c: u32,
    part: u32,
    ways: u32,
}

fn lane4(lid: u32) -> Lane4 {
    return Lane4(lid % p.d4, lid / p.d4, DWG / p.d4);
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

fn decode_step(t: KeySpan, k0: u32, keep: bool, lid: u32) {
    var s = MASKED;
    if (keep) {
        let row = kv_row(k0 + lid, t.hk);
        var dotp = 0.0;
        for (var c = 0u; c < p.d4; c = c + 1u) {
            dotp = dotp + dot(q_shared[c], load_k(row + c));
        }
        s = clamp(dotp, -BIG, BIG);
    }
    s_shared[lid] = s;
    workgroupBarrier(); // the step's scores are complete (and last step's weights all read)
    let cnt = min(DWG, t.end - k0);
    var tmax = MASKED;
    for (var r = 0u; r < cnt; r = r + 1u) {
        tmax = max(tmax, s_shared[r]);
    }
    let m_new = max(d_m, tmax);
    w_shared[lid] = select(exp(s - m_new), 0.0, s == MASKED);
    workgroupBarrier(); // the weights are complete (and every score read)
    // When the whole step is masked, m_new == d_m and alpha = 1.
    let alpha = exp(d_m - m_new);
    let ln = lane4(lid);
    d_acc = d_acc * alpha;
    d_l = d_l * alpha;
    // This invocation's keys: none when part >= ways (d4 does not divide 64).
    for (var r = ln.part; r < cnt; r = r + ln.ways) {
        let w = w_shared[r];
        d_l = d_l + w;
        // Weight 0 (masked key, or exp underflow): skip the load.
        if (w != 0.0) {
            d_acc = d_acc + w * load_v(kv_row(k0 + r, t.hk) + ln.c);
        }
    }
    d_m = m_new;
}

// Adds up the parts and writes this split's partial: accumulator rows first (splits·Lq·H rows
// of d4 vec4), then one (max, sum, 0, 0) vec4 per row.
fn decode_store(t: KeySpan, lid: u32) {
    let ln = lane4(lid);
    acc_shared[lid] = d_acc;
    l_shared[lid] = d_l;
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
        // Every invocation of a part holds the same sum; take column 0's.
        var l = 0.0;
        for (var w = 0u; w < ln.ways; w = w + 1u) {
            l = l + l_shared[w * p.d4];
        }
        out[p.splits * p.lq * p.heads * p.d4 + row] = vec4<f32>(d_m, l, 0.0, 0.0);
    }
}

// A part with no keys (the cache is shorter than the parts cover): zeros and (MASKED, 0),
// without touching q, k, v or any barrier.
fn decode_store_empty(t: KeySpan, lid: u32) {
    let row = (t.s * p.lq + t.i) * p.heads + t.h;
    if (lid < p.d4) {
        out[row * p.d4 + lid] = vec4<f32>(0.0);
    }
    if (lid == 0u) {
        out[p.splits * p.lq * p.heads * p.d4 + row] = vec4<f32>(MASKED, 0.0, 0.0, 0.0);
    }
}

// The single-part store: the parts added up as in decode_store, then divided by their sum
// into the output [Lq, H, d] (zeros for a query that saw no key, as the merge gives).
fn decode_store_single(t: KeySpan, lid: u32) {
    let ln = lane4(lid);
    acc_shared[lid] = d_acc;
    l_shared[lid] = d_l;
    workgroupBarrier();
    if (lid < p.d4) {
        var total = vec4<f32>(0.0);
        var l = 0.0;
        for (var w = 0u; w < ln.ways; w = w + 1u) {
            total = total + acc_shared[w * p.d4 + lid];
            l = l + l_shared[w * p.d4];
        }
        out[(t.i * p.heads + t.h) * p.d4 + lid] = select(total / l, vec4<f32>(0.0), l == 0.0);
    }
}

// No keys at all (a cache position of 0 with nothing visible): zeros, as the merge gives.
fn decode_store_single_empty(t: KeySpan, lid: u32) {
    if (lid < p.d4) {
        out[(t.i * p.heads + t.h) * p.d4 + lid] = vec4<f32>(0.0);
    }
}

@compute @workgroup_size(64)
fn attention_decode_single(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let t = key_span(wid, nwg);
    if (!t.inside) { return; }
    if (t.start == t.end) {
        decode_store_single_empty(t, lid);
        return;
    }
    decode_begin(t, lid);
    for (var k0 = t.start; k0 < t.end; k0 = k0 + DWG) {
        decode_step(t, k0, k0 + lid < t.end, lid);
    }
    decode_store_single(t, lid);
}

@compute @workgroup_size(64)
fn attention_decode_single_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32) {
    let t = key_span(wid, nwg);
    if (!t.inside) { return; }
    if (t.start == t.end) {
        decode_store_single_empty(t, lid);
        return;
    }
    decode_begin(t, lid);
    for (var k0 = t.start; k0 < t.end; k0 = k0 + DWG) {
        let j = k0 + lid;
        var keep = j < t.end;
        if (keep) {
            keep = key_kept(j);
        }
        decode_step(t, k0, keep, lid);
    }
    decode_store_single(t, lid);
}

@compute @workgroup_size(64)
fn attention_decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let t = key_span(wid, nwg);
    if (!t.inside) { return; }
    if (t.start == t.end) {
        decode_store_empty(t, lid);
        return;
    }
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
    if (t.start == t.end) {
        decode_store_empty(t, lid);
        return;
    }
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
