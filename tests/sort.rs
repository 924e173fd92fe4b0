//! The sort family against its CPU reference: argsort (stable radix sort over scratch),
//! inverse permutations and row gathers, on seeded random keys with many duplicates and with
//! unique keys, awkward sizes (1, 2, a prime, just over a tile of 2048, several tiles, a
//! batch of rows), key ranges that need 1, 2, 5 and 8 radix passes, and launches whose grid
//! wraps past 65535 workgroups. Outputs are poisoned first.
//!
//! Tolerance: exact. A permutation is integers, and a gather copies f32 bits.

mod common;

use common::{block, gpu, seed};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use webformer::{cpu, Context, DType, GpuExecutor, Graph, HostData, NodeId};

/// How the keys of a test are drawn.
#[derive(Clone, Copy, Debug)]
enum Keys {
    /// Values in 0..k: many duplicates, so stability decides most of the order.
    Few(u32),
    /// Distinct values spread over the whole u32 range (all 8 digits and the top bit vary).
    Unique,
    /// Any u32.
    Any,
}

fn draw(seed: u64, rows: usize, n: usize, keys: Keys) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    match keys {
        Keys::Few(k) => (0..rows * n).map(|_| rng.random_range(0..k)).collect(),
        Keys::Any => (0..rows * n).map(|_| rng.random()).collect(),
        Keys::Unique => {
            // An odd multiplier is a bijection of u32: distinct columns give distinct keys.
            let mut out = Vec::with_capacity(rows * n);
            for _ in 0..rows {
                let mut row: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9E37_79B1)).collect();
                row.shuffle(&mut rng);
                out.extend(row);
            }
            out
        }
    }
}

fn shape_of(rows: usize, n: usize) -> Vec<usize> {
    if rows == 1 {
        vec![n]
    } else {
        vec![rows, n]
    }
}

struct Sorted {
    perm: Vec<u32>,
    inv: Vec<u32>,
    /// The keys (as f32 halves [rows, n, 2]: high and low 16 bits) gathered by perm on the GPU.
    gathered: Vec<f32>,
}

/// argsort -> (inverse, gather of the keys by the permutation) on the GPU, outputs poisoned.
fn gpu_sort(ctx: &Context, rows: usize, n: usize, key_bits: u32, keys: &[u32]) -> Sorted {
    let mut g = Graph::new();
    let k = g.input("keys", &shape_of(rows, n), DType::U32).unwrap();
    let x_shape = if rows == 1 { vec![n, 2] } else { vec![rows, n, 2] };
    let x = g.input("x", &x_shape, DType::F32).unwrap();
    let perm = g.argsort_bits(k, key_bits).unwrap();
    let inv = g.inverse_permutation(perm).unwrap();
    let gathered = g.gather_rows(x, perm).unwrap();
    for id in [perm, inv, gathered] {
        g.output(id).unwrap();
    }
    let mut exe = GpuExecutor::new(ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("keys", keys).unwrap();
    let mask = if key_bits == 32 { u32::MAX } else { (1 << key_bits) - 1 };
    // Each sorted key as two exact f32 halves (high 16 bits, low 16 bits), so the order of the
    // gathered rows can be checked without the reference.
    let xs: Vec<f32> = keys.iter().flat_map(|&k| [((k & mask) >> 16) as f32, (k & mask & 0xffff) as f32]).collect();
    exe.set_input("x", &xs).unwrap();
    exe.run().unwrap();
    Sorted {
        perm: read_u32(&mut exe, perm),
        inv: read_u32(&mut exe, inv),
        gathered: block(exe.read(gathered)).unwrap().to_f32(),
    }
}

fn read_u32(exe: &mut GpuExecutor, id: NodeId) -> Vec<u32> {
    match block(exe.read(id)).unwrap() {
        HostData::U32(v) => v,
        other => panic!("expected u32, got {}", other.dtype()),
    }
}

/// First index where two u32 sequences differ, with both values, for the failure message.
fn first_diff(got: &[u32], want: &[u32]) -> Option<(usize, u32, u32)> {
    assert_eq!(got.len(), want.len(), "length differs from the reference");
    got.iter().zip(want).enumerate().find(|(_, (g, w))| g != w).map(|(i, (g, w))| (i, *g, *w))
}

fn check(ctx: &Context, rows: usize, n: usize, key_bits: u32, keys: Keys, seed: u64) {
    let what = format!("argsort rows={rows} n={n} key_bits={key_bits} {keys:?}");
    let k = draw(seed, rows, n, keys);
    let got = gpu_sort(ctx, rows, n, key_bits, &k);
    let want = cpu::sort::argsort(&k, n, key_bits);
    if let Some((i, g, w)) = first_diff(&got.perm, &want) {
        panic!("{what}: perm[{}][{}] is {g}, reference {w}", i / n, i % n);
    }
    // Independently of the reference: the inverse undoes the permutation ...
    for (i, &p) in got.perm.iter().enumerate() {
        let (r, c) = (i / n, i % n);
        assert_eq!(got.inv[r * n + p as usize], c as u32, "{what}: inv[perm[{r}][{c}]] is not {c}");
    }
    if let Some((i, g, w)) = first_diff(&got.inv, &cpu::sort::inverse_permutation(&want, n)) {
        panic!("{what}: inv[{}][{}] is {g}, reference {w}", i / n, i % n);
    }
    // ... and the keys gathered into the sorted order do not decrease within a row.
    let halves: Vec<(f32, f32)> = got.gathered.chunks(2).map(|h| (h[0], h[1])).collect();
    for (i, w) in halves.windows(2).enumerate() {
        if (i + 1) % n != 0 {
            assert!(w[0] <= w[1], "{what}: gathered keys decrease at row {} column {}", i / n, i % n);
        }
    }
}

#[test]
fn argsort_matches_reference_on_awkward_sizes() {
    let Some(ctx) = gpu() else { return };
    let s = seed("argsort");
    // 1, 2, a prime, the small tile (256) and just over it, one tile (2048) and just over it,
    // several tiles with a ragged end, batches.
    let sizes =
        [(1, 1), (1, 2), (1, 1009), (1, 256), (1, 257), (1, 2048), (1, 2049), (3, 300), (5, 777), (2, 10007), (4, 1)];
    for (i, &(rows, n)) in sizes.iter().enumerate() {
        for (j, keys) in [Keys::Few(5), Keys::Unique, Keys::Any].into_iter().enumerate() {
            check(&ctx, rows, n, 32, keys, s + (3 * i + j) as u64);
        }
    }
}

#[test]
fn argsort_with_fewer_key_bits() {
    let Some(ctx) = gpu() else { return };
    let s = seed("argsort_bits");
    // 1, 2 and 5 passes (3, 8 and 20 bits); Any keys have high bits set, which the sort ignores.
    for (i, &bits) in [3u32, 8, 20].iter().enumerate() {
        check(&ctx, 3, 2500, bits, Keys::Any, s + i as u64);
        check(&ctx, 2, 641, bits, Keys::Few(1 << bits.min(6)), s + 10 + i as u64);
    }
}

#[test]
fn argsort_grid_wraps_past_65535_workgroups() {
    let Some(ctx) = gpu() else { return };
    let s = seed("argsort_wrap");
    // 66,000 rows of 3: the scatter launch has one workgroup per row, so its grid wraps into
    // y. One pass (4 bits) keeps it quick on lavapipe (the ping-pong is tested above).
    check(&ctx, 66_000, 3, 4, Keys::Few(16), s);
}

#[test]
fn gather_rows_grid_wraps_past_65535_workgroups() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gather_wrap");
    // 262,145 rows of 64 gathered: 65,537 workgroups of 256 outputs.
    let (n, d, m) = (5, 64, 262_145);
    let mut rng = StdRng::seed_from_u64(s);
    let x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-2.0..2.0)).collect();
    let idx: Vec<u32> = (0..m).map(|_| rng.random_range(0..n as u32 + 1)).collect();
    let mut g = Graph::new();
    let xn = g.input("x", &[n, d], DType::F32).unwrap();
    let id = g.input("idx", &[m], DType::U32).unwrap();
    let y = g.gather_rows(xn, id).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("x", &x).unwrap();
    exe.set_input("idx", &idx).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    let want = cpu::sort::gather_rows(&x, &idx, n, m, d);
    let bad = got.iter().zip(&want).position(|(g, w)| g.to_bits() != w.to_bits());
    assert!(bad.is_none(), "gather_rows: element {bad:?} differs from the reference");
}

/// The size Reformer needs (8 heads x 4 rounds x 65,536 tokens), about 10 s on lavapipe:
/// run with `cargo test --test sort -- --ignored`.
#[test]
#[ignore]
fn argsort_reformer_size() {
    let Some(ctx) = gpu() else { return };
    check(&ctx, 8, 262_144, 32, Keys::Unique, seed("argsort_reformer"));
}

#[test]
fn gather_rows_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("gather_rows");
    // (batch, n, d, m), with out-of-range indices mixed in (they give zero rows).
    for (i, &(b, n, d, m)) in [(1, 1, 1, 1), (1, 7, 3, 13), (3, 97, 5, 41), (2, 300, 64, 301)].iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(s + i as u64);
        let x: Vec<f32> = (0..b * n * d).map(|_| rng.random_range(-2.0..2.0)).collect();
        let idx: Vec<u32> = (0..b * m)
            .map(|j| match j % 9 {
                4 => n as u32,
                8 => u32::MAX,
                _ => rng.random_range(0..n as u32),
            })
            .collect();
        let mut g = Graph::new();
        let (xs, is) = if b == 1 { (vec![n, d], vec![m]) } else { (vec![b, n, d], vec![b, m]) };
        let xn = g.input("x", &xs, DType::F32).unwrap();
        let id = g.input("idx", &is, DType::U32).unwrap();
        let y = g.gather_rows(xn, id).unwrap();
        g.output(y).unwrap();
        let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
        exe.poison_outputs();
        exe.set_input("x", &x).unwrap();
        exe.set_input("idx", &idx).unwrap();
        exe.run().unwrap();
        let got = block(exe.read(y)).unwrap().to_f32();
        let want = cpu::sort::gather_rows(&x, &idx, n, m, d);
        assert_eq!(got.len(), want.len());
        for (e, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits(),
                "gather_rows b={b} n={n} d={d} m={m}: element {e} is {g}, reference {w}"
            );
        }
    }
}

#[test]
fn inverse_of_non_permutations_is_defined() {
    let Some(ctx) = gpu() else { return };
    let s = seed("inverse");
    // Repeated and out-of-range entries: inv[j] is the smallest i naming j, else n.
    let (rows, n) = (3, 1031);
    let mut rng = StdRng::seed_from_u64(s);
    let perm: Vec<u32> = (0..rows * n).map(|_| rng.random_range(0..n as u32 + 20)).collect();
    let mut g = Graph::new();
    let p = g.input("perm", &[rows, n], DType::U32).unwrap();
    let inv = g.inverse_permutation(p).unwrap();
    g.output(inv).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("perm", &perm).unwrap();
    exe.run().unwrap();
    let got = read_u32(&mut exe, inv);
    if let Some((i, g, w)) = first_diff(&got, &cpu::sort::inverse_permutation(&perm, n)) {
        panic!("inverse_permutation: element {i} is {g}, reference {w}");
    }
}

#[test]
fn argsort_scratch_is_pooled_and_reused_safely() {
    let Some(ctx) = gpu() else { return };
    let s = seed("argsort_scratch");
    // Two sorts in one graph: their scratch are pool tenants of their own steps, which the
    // planner may place in the same buffers.
    let (rows, n) = (2, 4099);
    let mut g = Graph::new();
    let a = g.input("a", &[rows, n], DType::U32).unwrap();
    let b = g.input("b", &[rows, n], DType::U32).unwrap();
    let pa = g.argsort(a).unwrap();
    let pb = g.argsort_bits(b, 12).unwrap();
    g.output(pa).unwrap();
    g.output(pb).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    let plan = exe.plan();
    for (id, passes) in [(pa, 4), (pb, 4)] {
        let step = plan.order.iter().position(|&x| x == id).unwrap();
        let pools = &plan.scratch[step];
        assert_eq!(pools.len(), passes, "argsort node #{} should have {passes} scratch buffers: {pools:?}", id.0);
        assert!(pools.iter().all(|&p| p < plan.pools.len()), "scratch must name pool buffers: {pools:?}");
    }
    // 8 passes of 3 launches, then 3 passes of 3.
    assert_eq!(exe.steps(), 24 + 9);
    // Rows of one tile need no histogram: one launch per pass, keys A and B and the values.
    let mut g1 = Graph::new();
    let k = g1.input("k", &[5, 100], DType::U32).unwrap();
    let p1 = g1.argsort(k).unwrap();
    g1.output(p1).unwrap();
    let exe1 = GpuExecutor::new(&ctx, &g1).unwrap();
    assert_eq!((exe1.steps(), exe1.plan().scratch[0].len()), (8, 3));
    let mut runs = Vec::new();
    for round in 0..3u64 {
        // Rounds 0 and 1 repeat the same keys; round 2 draws new ones.
        let ka = draw(s + round / 2, rows, n, Keys::Any);
        let kb = draw(s + 100 + round / 2, rows, n, Keys::Few(4096));
        exe.poison_outputs();
        exe.set_input("a", &ka).unwrap();
        exe.set_input("b", &kb).unwrap();
        exe.run().unwrap();
        let (ga, gb) = (read_u32(&mut exe, pa), read_u32(&mut exe, pb));
        assert!(first_diff(&ga, &cpu::sort::argsort(&ka, n, 32)).is_none(), "round {round}: argsort of a");
        assert!(first_diff(&gb, &cpu::sort::argsort(&kb, n, 12)).is_none(), "round {round}: argsort of b");
        runs.push((ga, gb));
    }
    assert!(runs[0] == runs[1], "the same keys sorted twice by one executor gave different results");
}

#[test]
fn builders_reject_bad_inputs() {
    let mut g = Graph::new();
    let f = g.input("f", &[4, 5], DType::F32).unwrap();
    let k = g.input("k", &[4, 5], DType::U32).unwrap();
    let k3 = g.input("k3", &[2, 4, 5], DType::U32).unwrap();
    let x = g.input("x", &[3, 5, 8], DType::F32).unwrap();
    let e = g.argsort(f).unwrap_err().to_string();
    assert!(e.contains("u32"), "{e}");
    assert!(g.argsort(k3).unwrap_err().to_string().contains("[B, N]"));
    for bits in [0, 33] {
        assert!(g.argsort_bits(k, bits).unwrap_err().to_string().contains("key_bits"));
    }
    // The batch of x (3) and of idx (4) differ.
    let e = g.gather_rows(x, k).unwrap_err().to_string();
    assert!(e.contains("[3, 5, 8]") && e.contains("[4, 5]"), "{e}");
    assert!(g.gather_rows(k, k).is_err());
    assert!(g.inverse_permutation(f).is_err());
    let perm = g.argsort(k).unwrap();
    assert_eq!(g.node(perm).shape, vec![4, 5]);
    assert_eq!(g.node(perm).dtype, DType::U32);
}
