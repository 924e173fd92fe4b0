// Reformer attention (Kitaev et al. 2020) as Hugging Face's modeling_reformer.py computes it:
// LSH hashing, chunked shared-QK attention over the hash-sorted order, the un-sort and
// combination of hashing rounds, and local (chunked) attention.
//
// Layout: head-major. qk, q, k, v [B, L, d] (B = heads, d a multiple of 4, read as vec4);
// rotations [B, d, R, S]; perm / undo [B, N] u32 with N = R·L (sorted position -> r·L + t and
// back); the chunk attention's output [B, N, d + 1] holds each sorted query's output then its
// log-sum-exp. A padding mask [L] (u32, or f32 bits when mask_f32 = 1; 0 / -0.0 hide the
// token) is shared by the B rows.
//
// Entry points, one invocation each per:
// - lsh_hash:              (row, round, token): the offset bucket, u32 [B, N]; one
//                          workgroup per (row, round) and tile of WG tokens.
// - lsh_key_norm:          (row, token): the key factor rsqrt(mean(x²) + 1e-6) / sqrt(d) into
//                          scratch [B, L] (HF's _len_and_dim_norm, applied to the dot product
//                          instead of the key: one pass over keys rather than one per query).
// - lsh_chunk:             (row, sorted position): attention of that query over its window.
// - lsh_combine:           (row, token): Σ_r exp(lse_r - logsumexp lse) · out_r.
// - local_attention:       (row, token): local attention of that query over its window.
//
// The mask binding is always bound (a stand-in buffer when the node has no mask, with
// p.masked = 0 so it is never read): one entry point per kernel, whose layout always holds it.
//
// Masking is by replacement, as HF does: a hidden key's score becomes -1e9 (MASK_VALUE) and,
// in LSH, the query's own token -1e5 (SELF_MASK); those scores then take part in the softmax
// like any other. The online softmax keeps the running max m, the sum l of exp(s - m) and the
// accumulator scaled by exp(-m), rescaling when m grows, so every exp() argument is <= 0.
// Normalisation is HF's exp(s - lse) with lse = m + log(l) rounded to f32 (multiplying by
// exp(m - lse) rather than dividing by l): at |lse| ~ 1e5 or 1e9 (rows that see only their own
// token, or only masked keys) that rounding visibly changes the weights, and HF has it.
//
// Workgroups: 64 invocations (a multiple of the subgroup sizes met: 8, 32, 64); grids wrap into
// y beyond 65535 workgroups (index = wid.y · nwg.x + wid.x), and every entry point returns for
// indices past its count. Registers: a query row and its accumulator, MAX_D4 vec4 each.

struct Params {
    b: u32,          // rows (heads)
    l: u32,          // tokens
    d4: u32,         // head size / 4
    n: u32,          // sorted positions N = R·L (chunk, combine); rounds · L (hash)
    rounds: u32,     // R
    s: u32,          // rotation columns per round (HF's rotation_size / 2)
    chunk: u32,      // positions per chunk
    before: u32,     // chunks seen before ...
    after: u32,      // ... and after (circularly)
    causal: u32,     // 1: a query sees tokens <= its own only
    mask_f32: u32,   // 1: the mask holds f32 bits, else u32
    stride: u32,     // hash: bucket offset between rounds (bucket count, + 1 with a mask)
    count: u32,      // hash: buckets per round (the padding bucket's number)
    n_factors: u32,  // hash: factors in use
    scale: f32,      // 1 / sqrt(d)
    masked: u32,     // 1: the mask binding holds a padding mask (else a stand-in, never read)
    factors: vec4<u32>,
}

const MASK_VALUE: f32 = -1e9;
const SELF_MASK: f32 = -1e5;
const MAX_D4: u32 = 32u;     // head size <= 128 (graph::LSH_MAX_HEAD_DIM)
const MAX_ROUNDS: u32 = 16u; // kernels::lsh::MAX_ROUNDS

@group(0) @binding(0) var<uniform> p: Params;
// Bindings are shared by entry points (each uses one declaration per binding).
@group(0) @binding(2) var<storage, read_write> out_u: array<u32>;       // hash
@group(0) @binding(2) var<storage, read_write> out_f: array<f32>;       // the others
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;         // qk, or local q
@group(0) @binding(3) var<storage, read> att: array<f32>;              // combine
@group(0) @binding(4) var<storage, read> rot: array<f32>;              // hash
@group(0) @binding(4) var<storage, read> y4: array<vec4<f32>>;         // chunk v, local k
@group(0) @binding(4) var<storage, read> undo: array<u32>;             // combine
@group(0) @binding(5) var<storage, read> hash_mask: array<u32>;        // hash
@group(0) @binding(5) var<storage, read> perm: array<u32>;             // chunk
@group(0) @binding(5) var<storage, read> z4: array<vec4<f32>>;         // local v
@group(0) @binding(6) var<storage, read> norms: array<f32>;            // chunk (scratch)
@group(0) @binding(6) var<storage, read> local_mask: array<u32>;       // local
@group(0) @binding(7) var<storage, read> chunk_mask: array<u32>;       // chunk

var<private> q_s: array<vec4<f32>, MAX_D4>;
var<private> acc: array<vec4<f32>, MAX_D4>;

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.y * nwg.x * WG + gid.x;
}

fn kept(bits: u32) -> bool {
    if (p.mask_f32 == 1u) {
        return (bits & 0x7fffffffu) != 0u;
    }
    return bits != 0u;
}

// ---------------------------------------------------------------------------------------
// Hashing

// One workgroup hashes WG tokens of one (row, round): wid.x is the token tile, wid.y = row · R
// + round. The rotation's address then depends on workgroup-uniform values only, and the loops
// run in uniform control flow (lanes past the last token hash a copy of it and write nothing;
// masked tokens are replaced at the end), so a compiler that tracks uniformity (llvmpipe's)
// reads each rotation element once for all lanes instead of once per lane: measured 16x
// faster on lavapipe than the per-token kernel. The token's row is read into registers once.
fn hash_bucket(t: u32, h: u32, r: u32) -> u32 {
    load_row(t, h);
    var bucket = 0u;
    var start = 0u;
    var product = 1u;
    let step = p.rounds * p.s;
    for (var f = 0u; f < p.n_factors; f++) {
        let half = p.factors[f] / 2u;
        var best = Best();
        for (var j = 0u; j < half; j++) {
            var xr = 0.0;
            var base = (h * p.d4 * 4u * p.rounds + r) * p.s + start + j;
            for (var k = 0u; k < p.d4; k++) {
                let w = vec4<f32>(rot[base], rot[base + step], rot[base + 2u * step], rot[base + 3u * step]);
                xr += dot(q_s[k], w);
                base += 4u * step;
            }
            best_take(&best, xr, j);
        }
        bucket += best_index(best, half) * product;
        start += half;
        product *= p.factors[f];
    }
    return bucket;
}

fn load_row(t: u32, h: u32) {
    for (var k = 0u; k < p.d4; k++) {
        q_s[k] = x4[(h * p.l + t) * p.d4 + k];
    }
}

// argmax over [x·R, -x·R], the first maximum winning (torch.argmax): the largest column wins
// unless the most negative one is strictly larger in magnitude. Columns are taken in order
// from 0; a column taken again (a repeat) never wins, the comparisons being strict.
struct Best {
    max_pos: f32,
    best_pos: u32,
    min_neg: f32,
    best_neg: u32,
}

fn best_take(b: ptr<function, Best>, xr: f32, j: u32) {
    if (j == 0u || xr > (*b).max_pos) {
        (*b).max_pos = xr;
        (*b).best_pos = j;
    }
    if (j == 0u || xr < (*b).min_neg) {
        (*b).min_neg = xr;
        (*b).best_neg = j;
    }
}

fn best_index(b: Best, half: u32) -> u32 {
    return select(b.best_pos, half + b.best_neg, -b.min_neg > b.max_pos);
}

// The last steps of both hash entry points: the bucket of token t (row and round hr), or the
// padding bucket for a masked token, offset by its round.
fn hash_store(t: u32, hr: u32, bucket: u32) {
    var v = bucket;
    if (p.masked == 1u && !kept(hash_mask[t])) {
        v = p.count;
    }
    out_u[hr * p.l + t] = v + (hr % p.rounds) * p.stride;
}

@compute @workgroup_size(WG)
fn lsh_hash(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.x * WG + lane;
    let hr = wid.y;
    let bucket = hash_bucket(min(t, p.l - 1u), hr / p.rounds, hr % p.rounds);
    if (t < p.l) {
        hash_store(t, hr, bucket);
    }
}


// ---------------------------------------------------------------------------------------
// Key norms (scratch of the chunk attention)

@compute @workgroup_size(WG)
fn lsh_key_norm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.b * p.l) {
        return;
    }
    var ss = 0.0;
    for (var k = 0u; k < p.d4; k++) {
        let x = x4[i * p.d4 + k];
        ss += dot(x, x);
    }
    out_f[i] = inverseSqrt(ss / f32(p.d4 * 4u) + 1e-6) * p.scale;
}

// ---------------------------------------------------------------------------------------
// Attention over a window of chunks (shared by LSH and local attention)

struct Running {
    m: f32,
    l: f32,
}

// Folds score s into the running softmax; returns (c, e): the caller scales its accumulator
// by c and adds e times the key's value row (values live in different bindings per entry
// point, so the loads stay with the caller).
fn fold(run: ptr<function, Running>, s: f32) -> vec2<f32> {
    let m_new = max((*run).m, s);
    let c = exp((*run).m - m_new);
    let e = exp(s - m_new);
    (*run).l = (*run).l * c + e;
    (*run).m = m_new;
    return vec2<f32>(c, e);
}

// Chunk `cc` of the window of query chunk c: chunks c - before ..= c + after, circular over
// `chunks`.
fn window_chunk(c: u32, w: u32, chunks: u32) -> u32 {
    // c + w - before, taken mod chunks without going negative.
    return (c + w + chunks - (p.before % chunks)) % chunks;
}

fn chunk_one(i: u32) {
    // i = row · N + sorted position
    let h = i / p.n;
    let sq = i % p.n;
    let tq = perm[i] % p.l;
    for (var k = 0u; k < p.d4; k++) {
        q_s[k] = x4[(h * p.l + tq) * p.d4 + k];
        acc[k] = vec4<f32>(0.0);
    }
    var run = Running(-3.4028234663852886e38, 0.0);
    let chunks = p.n / p.chunk;
    let c = sq / p.chunk;
    for (var w = 0u; w <= p.before + p.after; w++) {
        let first = window_chunk(c, w, chunks) * p.chunk;
        for (var j = 0u; j < p.chunk; j++) {
            let tk = perm[h * p.n + first + j] % p.l;
            let row = (h * p.l + tk) * p.d4;
            var s: f32;
            let hidden = (p.masked == 1u && !kept(chunk_mask[tk])) || (p.causal == 1u && tk > tq);
            if (tk == tq) {
                s = SELF_MASK;
            } else if (hidden) {
                s = MASK_VALUE;
            } else {
                var dp = 0.0;
                for (var k = 0u; k < p.d4; k++) {
                    dp += dot(q_s[k], x4[row + k]);
                }
                s = dp * norms[h * p.l + tk];
            }
            let ce = fold(&run, s);
            for (var k = 0u; k < p.d4; k++) {
                acc[k] = acc[k] * ce.x + ce.y * y4[row + k];
            }
        }
    }
    let d = p.d4 * 4u;
    let base = i * (d + 1u);
    let lse = run.m + log(run.l);
    let inv = exp(run.m - lse);
    for (var k = 0u; k < p.d4; k++) {
        let o = acc[k] * inv;
        out_f[base + 4u * k] = o.x;
        out_f[base + 4u * k + 1u] = o.y;
        out_f[base + 4u * k + 2u] = o.z;
        out_f[base + 4u * k + 3u] = o.w;
    }
    out_f[base + d] = lse;
}

@compute @workgroup_size(WG)
fn lsh_chunk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.b * p.n) {
        return;
    }
    chunk_one(i);
}


// ---------------------------------------------------------------------------------------
// Un-sort and combine rounds

@compute @workgroup_size(WG)
fn lsh_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.b * p.l) {
        return;
    }
    let h = i / p.l;
    let t = i % p.l;
    let d = p.d4 * 4u;
    var rows: array<u32, MAX_ROUNDS>;
    var w: array<f32, MAX_ROUNDS>;
    var m = -3.4028234663852886e38;
    for (var r = 0u; r < p.rounds; r++) {
        rows[r] = (h * p.n + undo[h * p.n + r * p.l + t]) * (d + 1u);
        w[r] = att[rows[r] + d];
        m = max(m, w[r]);
    }
    var sum = 0.0;
    for (var r = 0u; r < p.rounds; r++) {
        sum += exp(w[r] - m);
    }
    let total = m + log(sum);
    for (var r = 0u; r < p.rounds; r++) {
        w[r] = exp(w[r] - total);
    }
    for (var k = 0u; k < d; k++) {
        var o = 0.0;
        for (var r = 0u; r < p.rounds; r++) {
            o += w[r] * att[rows[r] + k];
        }
        out_f[i * d + k] = o;
    }
}

// ---------------------------------------------------------------------------------------
// Local attention

fn local_one(i: u32) {
    // i = row · L + token
    let h = i / p.l;
    let tq = i % p.l;
    for (var k = 0u; k < p.d4; k++) {
        q_s[k] = x4[i * p.d4 + k];
        acc[k] = vec4<f32>(0.0);
    }
    var run = Running(-3.4028234663852886e38, 0.0);
    let chunks = p.l / p.chunk;
    let c = tq / p.chunk;
    for (var w = 0u; w <= p.before + p.after; w++) {
        let first = window_chunk(c, w, chunks) * p.chunk;
        for (var j = 0u; j < p.chunk; j++) {
            let tk = first + j;
            let row = (h * p.l + tk) * p.d4;
            var s = MASK_VALUE;
            let hidden = (p.masked == 1u && !kept(local_mask[tk])) || (p.causal == 1u && tk > tq);
            if (!hidden) {
                var dp = 0.0;
                for (var k = 0u; k < p.d4; k++) {
                    dp += dot(q_s[k], y4[row + k]);
                }
                s = dp * p.scale;
            }
            let ce = fold(&run, s);
            for (var k = 0u; k < p.d4; k++) {
                acc[k] = acc[k] * ce.x + ce.y * z4[row + k];
            }
        }
    }
    let inv = exp(run.m - (run.m + log(run.l)));
    for (var k = 0u; k < p.d4; k++) {
        let o = acc[k] * inv;
        let base = i * p.d4 * 4u + 4u * k;
        out_f[base] = o.x;
        out_f[base + 1u] = o.y;
        out_f[base + 2u] = o.z;
        out_f[base + 3u] = o.w;
    }
}

@compute @workgroup_size(WG)
fn local_attention(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.b * p.l) {
        return;
    }
    local_one(i);
}

