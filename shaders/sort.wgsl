// Sorting and permutations of u32 rows (kernels::sort explains the algorithm and the passes).
//
// argsort: a least-significant-digit radix sort of (key, column) pairs, 4 bits per pass. Each
// pass is three launches over the rows [rows, n]:
// - sort_count: workgroup w = (row, tile) counts the digits of its tile of TILE keys into
//   hist[row][digit][tile] (digit-major, so one flat scan of a row's histogram gives every
//   (digit, tile) its first output position);
// - sort_scan: one workgroup per row turns hist into exclusive prefix sums, in place;
// - sort_scatter: each tile ranks its keys by digit, keeping their order (each invocation owns
//   ITEMS consecutive keys, and invocations are ranked in order), and writes every pair to
//   hist + rank. A stable scatter per digit makes the whole sort stable, so equal keys keep
//   ascending columns: the result is fully determined.
// inverse: sort_fill writes n everywhere, then sort_invert writes inv[perm[i]] = i (the smallest
// such i, by atomicMin, when an index repeats; entries >= n name nothing).
// gather: out[b, m, :] = x[b, idx[b, m], :], zeros for an index >= n.
//
// Every launch is a flat 1-D grid wrapped into y when it exceeds the per-dimension limit; the
// flat workgroup index is wid.y * nwg.x + wid.x and the excess workgroups of the last row of
// the grid return at once (before any barrier: their whole workgroup takes that branch).

struct Params {
    n: u32,          // row length (columns of keys / perm; rows of x for a gather)
    rows: u32,       // independent rows (the batch)
    tiles: u32,      // argsort: tiles per row, ceil(n / TILE)
    shift: u32,      // argsort: the digit's lowest bit
    first: u32,      // argsort: 1 in the first pass (the values are the columns, not read)
    last: u32,       // argsort: 1 in the last pass (keys are not written)
    count: u32,      // elementwise launches: elements (gather: rows * m * cols; else rows * n)
    cols: u32,       // gather: row width D
    m: u32,          // gather: indices per row
    digit_mask: u32, // argsort: this pass's digit values minus 1 (the last pass may take fewer
                     // than 4 bits when the key range is given)
    single: u32,     // argsort: 1 when a row is one tile (no count or scan launches, no hist)
}

const THREADS: u32 = 128u;   // argsort count and scatter invocations per workgroup
const ITEMS: u32 = 16u;      // consecutive keys per scatter invocation
const TILE: u32 = 2048u;     // THREADS * ITEMS keys per tile
const BINS: u32 = 16u;       // 2^4 digits per pass
const SMALL_THREADS: u32 = 16u;  // sort_scatter_small: rows of at most 256 keys
const SCAN_THREADS: u32 = 256u;
const WG: u32 = 256u;        // elementwise launches

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> rt: array<vec4<u32>, 4>;

fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

fn digit(key: u32) -> u32 {
    return (key >> p.shift) & p.digit_mask;
}

// Index of (row, digit, tile) in the histogram: each row holds BINS * tiles counts.
fn hist_at(row: u32, d: u32, tile: u32) -> u32 {
    return (row * BINS + d) * p.tiles + tile;
}

// ---- sort_count: the digit counts of one tile ------------------------------------------------

@group(0) @binding(2) var<storage, read_write> hist_out: array<u32>;
@group(0) @binding(3) var<storage, read> count_keys: array<u32>;

var<workgroup> bins: array<atomic<u32>, BINS>;

@compute @workgroup_size(128)
fn sort_count(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let w = flat_group(wid, nwg);
    if (w >= p.rows * p.tiles) { return; }
    let row = w / p.tiles;
    let tile = w % p.tiles;
    if (lid < BINS) { atomicStore(&bins[lid], 0u); }
    workgroupBarrier();
    // Strided so that neighbouring invocations read neighbouring keys; counting needs no order.
    let end = min((tile + 1u) * TILE, p.n);
    for (var i = tile * TILE + lid; i < end; i += THREADS) {
        atomicAdd(&bins[digit(count_keys[row * p.n + i])], 1u);
    }
    workgroupBarrier();
    if (lid < BINS) { hist_out[hist_at(row, lid, tile)] = atomicLoad(&bins[lid]); }
}

// ---- sort_scan: exclusive prefix sums of each row's histogram, in place ---------------------

@group(0) @binding(2) var<storage, read_write> hist_scan: array<u32>;

var<workgroup> sums: array<u32, SCAN_THREADS>;
var<workgroup> totals: array<u32, 16>;

// Inclusive scan of sums[0..len), len a multiple of 16 up to 256: runs of 16 are scanned
// serially by one invocation each, then the run totals by one invocation, then the totals are
// added back. Three barriers rather than the 2·log2(len) of a Hillis-Steele scan: barriers
// dominate on CPU adapters (lavapipe), and 32 serial steps cost little on a GPU. Every
// invocation of the workgroup must call it.
fn scan_sums(lid: u32, len: u32) {
    if (lid < len / 16u) {
        var acc = 0u;
        for (var j = lid * 16u; j < lid * 16u + 16u; j++) {
            acc += sums[j];
            sums[j] = acc;
        }
        totals[lid] = acc;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var acc = 0u;
        for (var g = 0u; g < len / 16u; g++) {
            acc += totals[g];
            totals[g] = acc;
        }
    }
    workgroupBarrier();
    if (lid < len && lid >= 16u) { sums[lid] += totals[lid / 16u - 1u]; }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn sort_scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, nwg);
    if (row >= p.rows) { return; }
    // Each invocation owns a contiguous run of the row's counts (the order of the scan).
    let len = BINS * p.tiles;
    let per = (len + SCAN_THREADS - 1u) / SCAN_THREADS;
    let base = row * len;
    let s0 = min(lid * per, len);
    let s1 = min(s0 + per, len);
    var acc = 0u;
    for (var i = s0; i < s1; i++) { acc += hist_scan[base + i]; }
    sums[lid] = acc;
    workgroupBarrier();
    scan_sums(lid, SCAN_THREADS);
    var run = 0u;
    if (lid > 0u) { run = sums[lid - 1u]; }
    for (var i = s0; i < s1; i++) {
        let c = hist_scan[base + i];
        hist_scan[base + i] = run;
        run += c;
    }
}

// ---- sort_scatter: stable ranking within a tile, then the writes -----------------------------

@group(0) @binding(2) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(3) var<storage, read_write> vals_out: array<u32>;
@group(0) @binding(4) var<storage, read> keys_in: array<u32>;
@group(0) @binding(5) var<storage, read> vals_in: array<u32>;
@group(0) @binding(6) var<storage, read> hist_in: array<u32>;

// cnt[d * threads + t]: keys of digit d among invocation t's items, then (after the flat
// exclusive scan) their rank within the tile counted over all smaller digits and earlier
// invocations: exactly the order of a stable sort of the tile by digit.
var<workgroup> cnt: array<u32, 2048>;    // BINS * THREADS
// Per digit: the tile's first output position minus the tile-local start of the digit.
var<workgroup> offset: array<u32, BINS>;

// One tile of `threads` * ITEMS keys (threads = THREADS, or SMALL_THREADS for rows that fit
// a small tile: the work per workgroup is BINS * threads whatever the row length, so short
// rows take small workgroups).
fn scatter(w: u32, lid: u32, threads: u32) {
    let row = w / p.tiles;
    let tile = w % p.tiles;
    let base = row * p.n;
    // This invocation's keys: columns [c0, c1), possibly none in the row's last tile.
    let c0 = min(tile * threads * ITEMS + lid * ITEMS, p.n);
    let c1 = min(c0 + ITEMS, p.n);
    for (var d = 0u; d < BINS; d++) { cnt[d * threads + lid] = 0u; }
    for (var c = c0; c < c1; c++) {
        let at = digit(keys_in[base + c]) * threads + lid;
        cnt[at] += 1u;
    }
    workgroupBarrier();
    // Flat exclusive scan of cnt[0 .. BINS * threads): invocation t sums its run
    // [BINS t, BINS t + BINS), the run sums are scanned, and each run is rewritten with its
    // running prefix.
    var acc = 0u;
    for (var j = 0u; j < BINS; j++) { acc += cnt[lid * BINS + j]; }
    sums[lid] = acc;
    workgroupBarrier();
    scan_sums(lid, threads);
    var run = 0u;
    if (lid > 0u) { run = sums[lid - 1u]; }
    for (var j = 0u; j < BINS; j++) {
        let c = cnt[lid * BINS + j];
        cnt[lid * BINS + j] = run;
        run += c;
    }
    // Digit d's tile-local start is cnt[d * threads] after the rewrite, i.e. the exclusive sum
    // before invocation d * threads / BINS. A row of one tile starts each digit there already.
    if (lid < BINS) {
        let k = lid * threads / BINS;
        var local_start = 0u;
        if (k > 0u) { local_start = sums[k - 1u]; }
        var first_pos = local_start;
        if (p.single == 0u) { first_pos = hist_in[hist_at(row, lid, tile)]; }
        offset[lid] = first_pos - local_start;
    }
    workgroupBarrier();
    for (var c = c0; c < c1; c++) {
        let key = keys_in[base + c];
        // The first pass sorts the columns themselves (vals_in is then a stand-in binding).
        var val = c;
        if (p.first == 0u) { val = vals_in[base + c]; }
        let d = digit(key);
        let at = d * threads + lid;
        let pos = base + offset[d] + cnt[at];
        cnt[at] += 1u;
        if (p.last == 0u) { keys_out[pos] = key; }
        vals_out[pos] = val;
    }
}

@compute @workgroup_size(128)
fn sort_scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let w = flat_group(wid, nwg);
    if (w >= p.rows * p.tiles) { return; }
    scatter(w, lid, THREADS);
}

@compute @workgroup_size(16)
fn sort_scatter_small(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let w = flat_group(wid, nwg);
    if (w >= p.rows * p.tiles) { return; }
    scatter(w, lid, SMALL_THREADS);
}

// ---- inverse permutation ----------------------------------------------------------------------

@group(0) @binding(2) var<storage, read_write> inv: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> perm: array<u32>;

@compute @workgroup_size(256)
fn sort_fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    // The grid is rounded up to whole workgroups: skip the excess.
    if (i >= p.count) { return; }
    atomicStore(&inv[i], p.n);
}

@compute @workgroup_size(256)
fn sort_invert(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    if (i >= p.count) { return; }
    let j = perm[i];
    // An entry >= n names no column: it writes nothing (no out-of-bounds write).
    if (j >= p.n) { return; }
    let row = i / p.n;
    atomicMin(&inv[row * p.n + j], i % p.n);
}

// ---- gather of rows --------------------------------------------------------------------------

@group(0) @binding(2) var<storage, read_write> gathered: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> idx: array<u32>;

@compute @workgroup_size(256)
fn sort_gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat_group(wid, nwg) * WG + lid;
    if (i >= p.count) { return; }
    let r = i / p.cols;          // output row: (b, m)
    let b = r / p.m;
    let j = idx[r];
    // An index >= n selects no row: the output row is zeros (defined, never an out-of-bounds read).
    var v = 0.0;
    if (j < p.n) { v = x[(b * p.n + j) * p.cols + i % p.cols]; }
    gathered[i] = v;
}
