//! Sort family (shaders/sort.wgsl): argsort of u32 rows, inverse permutations and row gathers.
//!
//! **Argsort is a least-significant-digit radix sort** of (key, column) pairs, 4 bits per pass
//! (`RADIX_BITS`), ceil(key_bits / 4) passes: 8 for full u32 keys, fewer when the caller knows
//! the keys' range (`Graph::argsort_bits`). Why radix: its work is linear (a bitonic network
//! over 262,144 keys needs 171 compare-exchange steps, 40 or so of them global launches, on a
//! padded power-of-two length; radix needs 3 launches per pass, no padding), each pass reads
//! and writes every pair once with few workgroup barriers (costly on CPU adapters such as
//! lavapipe), and LSD radix is stable by construction, which makes the result fully
//! determined. The per-tile scan is portable: no subgroup operations, no inter-workgroup
//! forward-progress assumption (unlike single-pass "decoupled look-back" sorts), only
//! workgroup memory within WebGPU's 16 KiB (about 9 KiB used).
//!
//! Each pass is three launches over rows [B, N] cut into tiles of `TILE` (2048) keys:
//! 1. `sort_count`: one workgroup per (row, tile) counts its keys' digits (16 bins) into
//!    the histogram, stored digit-major per row: hist[row][digit][tile];
//! 2. `sort_scan`: one workgroup per row scans its 16 · tiles counts (exclusive, in place):
//!    entry (digit, tile) becomes the first output position of that tile's keys of that digit;
//! 3. `sort_scatter`: one workgroup per (row, tile) ranks its keys stably by digit (each of its
//!    128 invocations owns 16 consecutive keys; a workgroup scan over digit x invocation
//!    counts) and writes each pair at histogram + rank.
//!
//! A row of one tile (N <= 2048) needs no histogram: its ranks are its positions, so each
//! pass is the scatter alone, and rows of at most `SMALL_TILE` (256) keys take the scatter in
//! workgroups of 16 (`sort_scatter_small`): a scatter workgroup's work is 16 x invocations
//! whatever the row length, and on lavapipe that cut 66,000 rows of 3 keys from 190 to 26 µs
//! per workgroup. The in-workgroup scans are two-level serial (3 barriers) rather than
//! Hillis-Steele (2·log2 n barriers), since barriers are what CPU adapters pay most for.
//!
//! Scratch (4-byte elements; E = B · N): keys A, E (pass p writes side p mod 2; the first
//! pass reads the input keys and takes the columns as values, the last writes no keys); with
//! more than one pass also keys B, E, and one values buffer, E, which the passes alternate
//! with the node's output so that the last pass writes the output; with more than one tile
//! per row the histogram, B · 16 · ceil(N / 2048). For 8 rows of 262,144 keys that is 24 MiB
//! plus 64 KiB, pooled by the planner for this node's step only.
//!
//! Measured on lavapipe (2 shared cores, GPU timestamps per launch, 8 passes): 8 x 65,536
//! keys in about 1.2 s (per pass: count ~30 ms, scan < 3 ms, scatter ~125 ms); 262,144 keys
//! in one row in 0.7 s. Not yet measured on a GPU.
//!
//! Inverse permutation: `sort_fill` (every entry N) then `sort_invert` (atomicMin of i into
//! inv[perm[i]]), so repeated or out-of-range entries still give a determined result.
//! Gather: one invocation per output element.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey, Lowered, Operand, Slot};
use crate::error::Result;
use crate::graph::SortOp;
use crate::tensor::numel;

/// Bits of the key each radix pass sorts by.
pub const RADIX_BITS: u32 = 4;
/// Digit values per pass.
pub const BINS: u32 = 1 << RADIX_BITS;
/// Invocations of the count and scatter launches (THREADS in the shader).
pub const THREADS: u32 = 128;
/// Keys per scatter invocation (ITEMS in the shader).
pub const ITEMS: u32 = 16;
/// Keys per tile: one workgroup's share of a row in the count and scatter launches.
pub const TILE: u32 = THREADS * ITEMS;
/// Invocations of the scatter for short rows: its workgroup's work is BINS x invocations
/// whatever the row length, so rows of up to SMALL_TILE keys take a small workgroup.
pub const SMALL_THREADS: u32 = 16;
/// Keys per tile of the small scatter.
pub const SMALL_TILE: u32 = SMALL_THREADS * ITEMS;
/// Invocations per workgroup of the elementwise launches (fill, invert, gather).
pub const WORKGROUP: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Count,
    Scan,
    Scatter,
    /// The scatter in workgroups of SMALL_THREADS, for rows of at most SMALL_TILE keys.
    ScatterSmall,
    Fill,
    Invert,
    Gather,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Count => "sort_count",
            Variant::Scan => "sort_scan",
            Variant::Scatter => "sort_scatter",
            Variant::ScatterSmall => "sort_scatter_small",
            Variant::Fill => "sort_fill",
            Variant::Invert => "sort_invert",
            Variant::Gather => "sort_gather",
        }
    }

    /// (read-write, read-only) storage bindings.
    pub fn io_counts(self) -> (u32, u32) {
        match self {
            Variant::Count | Variant::Invert => (1, 1),
            Variant::Scan | Variant::Fill => (1, 0),
            Variant::Scatter | Variant::ScatterSmall => (2, 3),
            Variant::Gather => (1, 2),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    rows: u32,
    tiles: u32,
    shift: u32,
    first: u32,
    last: u32,
    count: u32,
    cols: u32,
    m: u32,
    digit_mask: u32,
    single: u32,
}

/// Rows and row length of a [N] or [B, N] operand.
fn rows_of(shape: &[usize]) -> (usize, usize) {
    let n = shape[shape.len() - 1];
    (numel(shape) / n, n)
}

/// Launches of a sort-family node (shapes were checked when it was built).
pub fn lower(op: &SortOp, inputs: &[Operand], out: &[usize], max_per_dim: u32) -> Result<Lowered> {
    match *op {
        SortOp::Argsort { key_bits } => argsort(inputs[0].shape, key_bits as u32, max_per_dim),
        SortOp::Inverse => inverse(inputs[0].shape, max_per_dim),
        SortOp::Gather => gather(inputs, out, max_per_dim).map(Lowered::from),
    }
}

const KEYS: [Slot; 2] = [Slot::Scratch(0), Slot::Scratch(1)];
const VALS: Slot = Slot::Scratch(2);

fn argsort(shape: &[usize], key_bits: u32, max: u32) -> Result<Lowered> {
    let (rows, n) = rows_of(shape);
    let elements = as_u32("argsort keys", rows * n)? as u64;
    let tiles = n.div_ceil(TILE as usize);
    let hist_len = as_u32("argsort histogram", rows * BINS as usize * tiles)? as u64;
    let single = tiles == 1;
    let base =
        Params { n: n as u32, rows: rows as u32, tiles: tiles as u32, single: single as u32, ..Default::default() };
    let passes = key_bits.div_ceil(RADIX_BITS);
    let mut scratch = vec![4 * elements];
    if passes > 1 {
        scratch.extend([4 * elements, 4 * elements]);
    }
    // A row of one tile needs no histogram: the tile's own ranks are the positions (the
    // scatter then reads the keys through the histogram's binding, unused).
    let hist = match single {
        true => Slot::Input(0),
        false => {
            scratch.push(4 * hist_len);
            Slot::Scratch(scratch.len() - 1)
        }
    };
    let tile_grid = grid_1d((rows * tiles) as u64, 1, max)?;
    let row_grid = grid_1d(rows as u64, 1, max)?;
    let key = KernelKey::Sort;
    let scatter = if n <= SMALL_TILE as usize { Variant::ScatterSmall } else { Variant::Scatter };
    let mut dispatches = Vec::with_capacity(3 * passes as usize);
    for pass in 0..passes {
        let (first, last) = (pass == 0, pass + 1 == passes);
        let shift = pass * RADIX_BITS;
        let digit_mask = (1u32 << (key_bits - shift).min(RADIX_BITS)) - 1;
        let p = Params { shift, digit_mask, first: first as u32, last: last as u32, ..base };
        let keys_in = if first { Slot::Input(0) } else { KEYS[(pass as usize + 1) % 2] };
        // The values alternate between VALS and the output so that the last pass lands in it.
        let vals_at = |q: u32| if (passes - 1 - q).is_multiple_of(2) { Slot::Output } else { VALS };
        let vals_in = if first { Slot::Input(0) } else { vals_at(pass - 1) };
        if !single {
            dispatches.push(Dispatch::new(key(Variant::Count), &p, tile_grid).bind(&[hist], &[keys_in]));
            dispatches.push(Dispatch::new(key(Variant::Scan), &p, row_grid).bind(&[hist], &[]));
        }
        let writes = [KEYS[pass as usize % 2], vals_at(pass)];
        dispatches.push(Dispatch::new(key(scatter), &p, tile_grid).bind(&writes, &[keys_in, vals_in, hist]));
    }
    Ok(Lowered { dispatches, scratch, bounds: Vec::new() })
}

fn inverse(shape: &[usize], max: u32) -> Result<Lowered> {
    let (rows, n) = rows_of(shape);
    let count = as_u32("inverse_permutation elements", rows * n)?;
    let p = Params { n: n as u32, rows: rows as u32, count, ..Default::default() };
    let grid = grid_1d(count as u64, WORKGROUP, max)?;
    let fill = Dispatch::new(KernelKey::Sort(Variant::Fill), &p, grid);
    let invert = Dispatch::new(KernelKey::Sort(Variant::Invert), &p, grid);
    Ok(Lowered { dispatches: vec![fill, invert], ..Default::default() })
}

fn gather(inputs: &[Operand], out: &[usize], max: u32) -> Result<Dispatch> {
    let sx = inputs[0].shape;
    as_u32("gather_rows x elements", numel(sx))?;
    let (n, cols) = (sx[sx.len() - 2], sx[sx.len() - 1]);
    let m = inputs[1].shape[inputs[1].shape.len() - 1];
    let count = as_u32("gather_rows output elements", numel(out))?;
    let p = Params { n: n as u32, count, cols: cols as u32, m: m as u32, ..Default::default() };
    Ok(Dispatch::new(KernelKey::Sort(Variant::Gather), &p, grid_1d(count as u64, WORKGROUP, max)?))
}
