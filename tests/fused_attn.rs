//! The fused attention-side ops of a decoder layer against their composites and references:
//! Q, K and V as one projection over weights stacked at load (`Weights::concat_rows`), and
//! `rope_kv` (rotary embedding of q and k with the KV-cache append, one kernel), on fresh
//! seeded inputs of awkward sizes (1, 3 and 17 tokens; 9/3, 4/1, 2/2 and 1/1 heads; head sizes
//! 2, 6, 8, 24, 64), at nonzero positions, into f32 and f16 caches, outputs poisoned.
//!
//! Tolerances:
//! - rotated q and k against the f64 reference: |got - want| <= ROPE_TOL · (|u| + |v|) for the
//!   input pair (u, v), ROPE_TOL = 1e-6 as in tests/rope.rs (the same angle code).
//! - values: a copy, bit for bit (an f16 cache: the same f32 → f16 rounding as write_rows).
//! - into an f16 cache, rotated keys: two roundings to f16 of f32 values within the bound
//!   above land at most one f16 ulp apart, so add 2^-10 · |want| (+ 2^-24 for subnormals).
//! - rows the step does not write keep their sentinels, bit for bit.
//! - fused projection + rope_kv against separate projections + rope + write_rows (both on the
//!   GPU): the GEMVs may sum the same products in another order, 2·k·eps·Σ|x||w| apart (as in
//!   tests/gemv.rs); a rotation adds at most the sum of its pair's differences, plus two rope
//!   errors, so per element (2·k·eps + 2·ROPE_TOL)·(S_u + S_v) with S = Σ|x||w| of the
//!   element's projection row (|u| <= S_u), and 2·k·eps·S_v for values.
//! - whole decode steps (rope_kv, then attention over the cache) node by node against the CPU
//!   executor: attention's tolerance from tests/attention.rs, rtol 1e-4 and atol 2e-5, which
//!   also covers the rotated q (|q| < 2 here, so ROPE_TOL · (|u| + |v|) <= 2e-6).

mod common;

use common::{block, gpu, random, require_feature, seed};
use webformer::model::{HostTensor, Weights};
use webformer::{
    cpu, exec, Context, CpuExecutor, DType, GpuExecutor, Graph, HostData, KvCache, KvCacheConfig, NodeId, Plan,
    RopeKvParams, RopeMode, Rotary, SharedBuffers,
};

const ROPE_TOL: f32 = 1e-6;
const ATTN_TOL: (f32, f32) = (1e-4, 2e-5);
const THETA: f32 = 100000.0;
const SLOT: u32 = 2;

/// Head layout of a case: tokens, query heads, KV heads, head size.
#[derive(Clone, Copy, Debug)]
struct Heads {
    t: usize,
    h: usize,
    kv: usize,
    d: usize,
}

impl Heads {
    fn row(&self) -> usize {
        (self.h + 2 * self.kv) * self.d
    }
    fn width(&self) -> usize {
        self.kv * self.d
    }
    fn params(&self, mode: RopeMode) -> RopeKvParams {
        RopeKvParams { heads: self.h as u32, kv_heads: self.kv as u32, mode, theta: THETA, slot: SLOT }
    }
}

/// Sentinel for element i: -(1 + i mod 1000) - 0.5, exact in f16 and f32 and far from the
/// inputs (in [-1, 1)).
fn sentinels(n: usize) -> Vec<f32> {
    (0..n).map(|i| -((i % 1000) as f32) - 1.5).collect()
}

/// An executor that overwrites the whole state `name` [rows, cols] with sentinels, sharing
/// the state through `shared`.
fn filler(
    ctx: &Context,
    shared: &mut SharedBuffers,
    name: &str,
    rows: usize,
    cols: usize,
    dtype: DType,
) -> GpuExecutor {
    let mut g = Graph::new();
    let st = g.state(name, &[rows, cols], dtype).unwrap();
    let x = g.input("fill", &[rows, cols], DType::F32).unwrap();
    let w = g.write_rows(st, x, 0).unwrap();
    g.output(w).unwrap();
    let mut exe = GpuExecutor::with_shared(ctx, &g, &Plan::new(&g), shared).unwrap();
    exe.set_input("fill", &sentinels(rows * cols)).unwrap();
    exe.set_runtime_u32(0, 0).unwrap();
    exe
}

/// |u| + |v| of the input pair that element `e` of the head starting at `base` of qkv came from.
fn pair_scale(x: &[f32], base: usize, e: usize, d: usize, mode: RopeMode) -> f32 {
    let partner = match mode {
        RopeMode::Adjacent => e ^ 1,
        RopeMode::Halves => (e + d / 2) % d,
    };
    x[base + e].abs() + x[base + partner].abs()
}

fn f16_slack(want: f32, f16: bool) -> f32 {
    if f16 {
        want.abs() / 1024.0 + 2f32.powi(-24)
    } else {
        0.0
    }
}

/// Checks q [t, H, d] against the reference.
fn check_q(what: &str, x: &[f32], n: Heads, mode: RopeMode, got: &[f32], want: &[f32]) {
    for (j, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (t, h, e) = (j / (n.h * n.d), j / n.d % n.h, j % n.d);
        let bound = ROPE_TOL * pair_scale(x, t * n.row() + h * n.d, e, n.d, mode);
        assert!((g - w).abs() <= bound, "{what}: q element {j} is {g}, reference {w} (allowed {bound:e})");
    }
}

/// Checks a cache [rows, Hkv·d] after writing at `pos`: written rows against the reference
/// (keys rotated, values copied), the others their sentinels.
#[allow(clippy::too_many_arguments)]
fn check_cache(
    what: &str,
    x: &[f32],
    n: Heads,
    mode: RopeMode,
    pos: usize,
    keys: bool,
    got: &[f32],
    want: &[f32],
    f16: bool,
) {
    let fill = sentinels(got.len());
    let w_ = n.width();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (row, col) = (i / w_, i % w_);
        if !(pos..pos + n.t).contains(&row) {
            assert!(g.to_bits() == fill[i].to_bits(), "{what}: row {row} column {col} is {g}, expected its sentinel");
            continue;
        }
        let bound = if keys {
            let base = (row - pos) * n.row() + n.h * n.d + col / n.d * n.d;
            ROPE_TOL * pair_scale(x, base, col % n.d, n.d, mode) * (1.0 + 1.0 / 1024.0) + f16_slack(w, f16)
        } else {
            0.0
        };
        let kind = if keys { "key" } else { "value" };
        assert!(
            (g - w).abs() <= bound,
            "{what}: {kind} row {row} column {col} is {g}, reference {w} (allowed {bound:e})"
        );
    }
}

fn dtypes(ctx: &Context) -> Vec<DType> {
    if require_feature(ctx, wgpu::Features::SHADER_F16, "shader-f16") {
        vec![DType::F32, DType::F16]
    } else {
        vec![DType::F32]
    }
}

#[test]
fn rope_kv_matches_its_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("rope_kv");
    // (tokens, heads, KV heads, head size, cache rows): SmolLM2's 9/3 x 64, MQA 4/1, MHA 2/2,
    // head sizes 2 to 64, and a cache long enough for positions past 4096.
    let cases = [
        (1, 9, 3, 64, 40),
        (3, 9, 3, 64, 4200),
        (17, 4, 1, 8, 40),
        (1, 4, 1, 24, 40),
        (3, 2, 2, 6, 23),
        (17, 9, 3, 24, 40),
        (1, 1, 1, 2, 5),
    ];
    for (k, &(t, h, kv, d, rows)) in cases.iter().enumerate() {
        let n = Heads { t, h, kv, d };
        for dtype in dtypes(&ctx) {
            for mode in [RopeMode::Adjacent, RopeMode::Halves] {
                let what = format!("rope_kv {n:?} {mode:?} into [{rows}, {}] {dtype}", n.width());
                let mut shared = SharedBuffers::new();
                let mut fills = [
                    filler(&ctx, &mut shared, "k", rows, n.width(), dtype),
                    filler(&ctx, &mut shared, "v", rows, n.width(), dtype),
                ];
                let mut g = Graph::new();
                let qkv = g.input("qkv", &[t, n.row()], DType::F32).unwrap();
                let ks = g.state("k", &[rows, n.width()], dtype).unwrap();
                let vs = g.state("v", &[rows, n.width()], dtype).unwrap();
                let q = g.rope_kv(qkv, ks, vs, n.params(mode)).unwrap();
                g.output(q).unwrap();
                let mut exe = GpuExecutor::with_shared(&ctx, &g, &Plan::new(&g), &mut shared).unwrap();
                let mut cpu = CpuExecutor::new(&g);
                // The last rows, a row from the seed, and row 1.
                for pos in [rows - t, 1 + (s as usize + k) % (rows - t), 1.min(rows - t)] {
                    let what = format!("{what} at {pos} (seed {s})");
                    fills.iter_mut().for_each(|f| f.run().unwrap());
                    let x = random(s + (k * 7 + pos) as u64, t * n.row(), -1.0, 1.0);
                    exe.poison_outputs();
                    exe.set_input("qkv", &x).unwrap();
                    exe.set_runtime_u32(SLOT, pos as u32).unwrap();
                    exe.run().unwrap();
                    cpu.set_input("qkv", &HostData::F32(x.clone())).unwrap();
                    cpu.set_runtime_u32(SLOT, pos as u32).unwrap();
                    cpu.run().unwrap();
                    let read = |exe: &mut GpuExecutor, id| block(exe.read(id)).unwrap().to_f32();
                    let value = |id| cpu.value(id).unwrap().to_f32();
                    check_q(&what, &x, n, mode, &read(&mut exe, q), &value(q));
                    let f16 = dtype == DType::F16;
                    check_cache(&what, &x, n, mode, pos, true, &read(&mut exe, ks), &value(ks), f16);
                    check_cache(&what, &x, n, mode, pos, false, &read(&mut exe, vs), &value(vs), f16);
                }
            }
        }
    }
}

/// `w` [rows, cols] as `dtype` host data (quantized with llama.cpp's reference quantizer).
fn as_dtype(w: &[f32], dtype: DType) -> HostData {
    match dtype {
        DType::F32 => HostData::F32(w.to_vec()),
        DType::F16 => HostData::F16(w.iter().map(|&v| half::f16::from_f32(v)).collect()),
        q => HostData::Quant { dtype: q, len: w.len(), bytes: cpu::quant::quantize(q, w) },
    }
}

/// Σ_k |x[t, k]| · |w[o, k]| for every token t and output row o: [t, rows].
fn abs_products(x: &[f32], w: &[f32], t: usize, k: usize) -> Vec<f32> {
    let rows = w.len() / k;
    (0..t * rows)
        .map(|i| {
            let (ti, o) = (i / rows, i % rows);
            (0..k).map(|j| (x[ti * k + j] * w[o * k + j]).abs()).sum()
        })
        .collect()
}

#[test]
fn fused_projection_and_rope_kv_match_the_composite() {
    let Some(ctx) = gpu() else { return };
    let s = seed("fused qkv");
    let hidden = 64; // a multiple of the 32-element quantization blocks
    let eps = f32::EPSILON;
    let cases = [(1, 9, 3, 64), (3, 4, 1, 24), (17, 9, 3, 8)];
    for (k, &(t, h, kv, d)) in cases.iter().enumerate() {
        let n = Heads { t, h, kv, d };
        for wtype in [DType::F32, DType::F16, DType::Q8_0, DType::Q4_1] {
            for cache in dtypes(&ctx) {
                let what = format!("q/k/v {n:?} with {wtype} weights, {cache} cache (seed {s})");
                let seed_of = |i: u64| s + 10 * k as u64 + i;
                let mut weights = Weights::new("test");
                let mut parts = Vec::new();
                for (i, (name, rows)) in [("q", h * d), ("k", kv * d), ("v", kv * d)].into_iter().enumerate() {
                    let data = as_dtype(&random(seed_of(i as u64), rows * hidden, -0.5, 0.5), wtype);
                    parts.push((name, rows, data.clone()));
                    weights.insert(name, HostTensor { shape: vec![rows, hidden], data });
                }
                weights.concat_rows("qkv", &["q", "k", "v"]).unwrap();
                let stacked = weights.get("qkv").unwrap().clone();
                assert_eq!(stacked.shape, vec![n.row(), hidden], "{what}");
                assert_eq!(stacked.data.dtype(), wtype, "{what}: stacking keeps the dtype");
                assert!(weights.get("q").is_none(), "{what}: the parts are replaced");

                let mut g = Graph::new();
                let x = g.input("x", &[t, hidden], DType::F32).unwrap();
                let rows = t + 5;
                let mut comp = Vec::new();
                for (name, r, data) in &parts {
                    let w = g.weight(name, &[*r, hidden], data.clone()).unwrap();
                    comp.push(g.linear(x, w, None, None).unwrap());
                }
                let q = g.reshape(comp[0], &[t, h, d]).unwrap();
                let q_comp = g.rope(q, RopeMode::Adjacent, THETA, SLOT).unwrap();
                let kr = g.reshape(comp[1], &[t, kv, d]).unwrap();
                let kr = g.rope(kr, RopeMode::Adjacent, THETA, SLOT).unwrap();
                let kr = g.reshape(kr, &[t, n.width()]).unwrap();
                let ck = g.state("ck", &[rows, n.width()], cache).unwrap();
                let cv = g.state("cv", &[rows, n.width()], cache).unwrap();
                let ck = g.write_rows(ck, kr, SLOT).unwrap();
                let cv = g.write_rows(cv, comp[2], SLOT).unwrap();
                let wqkv = g.weight_arc("wqkv", &stacked.shape, stacked.data.clone()).unwrap();
                let qkv = g.linear(x, wqkv, None, None).unwrap();
                let fk = g.state("fk", &[rows, n.width()], cache).unwrap();
                let fv = g.state("fv", &[rows, n.width()], cache).unwrap();
                let q_fused = g.rope_kv(qkv, fk, fv, n.params(RopeMode::Adjacent)).unwrap();
                for y in [q_comp, ck, cv, q_fused] {
                    g.output(y).unwrap();
                }
                let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
                exe.poison_outputs();
                let xs = random(seed_of(7), t * hidden, -1.0, 1.0);
                exe.set_input("x", &xs).unwrap();
                let pos = 1 + (s as usize + k) % 5;
                exe.set_runtime_u32(SLOT, pos as u32).unwrap();
                exe.run().unwrap();
                let mut read = |id| block(exe.read(id)).unwrap().to_f32();
                let (qc, qf) = (read(q_comp), read(q_fused));
                let (kc, kf, vc, vf) = (read(ck), read(fk), read(cv), read(fv));

                // S = Σ|x||w| per token and stacked output row.
                let sums = abs_products(&xs, &stacked.data.to_f32(), t, hidden);
                let gemv = 2.0 * hidden as f32 * eps;
                // S_u + S_v of the adjacent pair of stacked row `i` (element e of its head).
                let pair = |i: usize, e: usize| sums[i] + sums[i - e + (e ^ 1)];
                let f16 = cache == DType::F16;
                for (j, (&a, &b)) in qf.iter().zip(&qc).enumerate() {
                    let (ti, c) = (j / (h * d), j % (h * d));
                    let bound = (gemv + 2.0 * ROPE_TOL) * pair(ti * n.row() + c, c % d);
                    assert!(
                        (a - b).abs() <= bound,
                        "{what}: q element {j}: fused {a}, composite {b} (allowed {bound:e})"
                    );
                }
                for (i, ((&a, &b), (&va, &vb))) in kf.iter().zip(&kc).zip(vf.iter().zip(&vc)).enumerate() {
                    let (row, col) = (i / n.width(), i % n.width());
                    if !(pos..pos + t).contains(&row) {
                        assert!(a == 0.0 && b == 0.0 && va == 0.0 && vb == 0.0, "{what}: row {row} was written");
                        continue;
                    }
                    let base = (row - pos) * n.row();
                    let kb = (gemv + 2.0 * ROPE_TOL) * pair(base + h * d + col, col % d) + f16_slack(b, f16);
                    assert!(
                        (a - b).abs() <= kb,
                        "{what}: key row {row} col {col}: fused {a}, composite {b} (allowed {kb:e})"
                    );
                    let vb_ = gemv * sums[base + (h + kv) * d + col] + f16_slack(vb, f16);
                    assert!(
                        (va - vb).abs() <= vb_,
                        "{what}: value row {row} col {col}: fused {va}, composite {vb} (allowed {vb_:e})"
                    );
                }
            }
        }
    }
}

#[test]
fn mixed_dtypes_stack_as_f32() {
    let mut weights = Weights::new("test");
    let a = random(seed("stack mixed"), 3 * 32, -1.0, 1.0);
    let q8 = as_dtype(&a, DType::Q8_0);
    let f16 = as_dtype(&a[..32], DType::F16);
    weights.insert("a", HostTensor { shape: vec![3, 32], data: q8.clone() });
    weights.insert("b", HostTensor { shape: vec![1, 32], data: f16.clone() });
    weights.concat_rows("ab", &["a", "b"]).unwrap();
    let w = weights.get("ab").unwrap();
    assert_eq!(w.shape, vec![4, 32]);
    let want: Vec<f32> = q8.to_f32().into_iter().chain(f16.to_f32()).collect();
    assert_eq!(*w.data, HostData::F32(want), "widened exactly");
    weights.insert("c", HostTensor { shape: vec![2, 16], data: HostData::F32(vec![0.0; 32]) });
    let e = weights.concat_rows("ac", &["ab", "c"]).unwrap_err();
    assert!(e.to_string().contains("column"), "{e}");
    assert!(weights.concat_rows("x", &["ab", "nope"]).unwrap_err().to_string().contains("nope"));
}

/// Builds one decode step of `n` over a fresh cache of `rows` positions through
/// `KvCache::attend_qkv`; returns the graph and the attention output.
fn step_graph(ctx: &Context, n: Heads, rows: usize, dtype: DType) -> (Graph, NodeId) {
    let config = KvCacheConfig { layers: 2, max_ctx: rows, kv_heads: n.kv, head_dim: n.d, slot: SLOT };
    let cache = KvCache::new(ctx, config).unwrap().with_dtype(dtype).unwrap();
    let mut g = Graph::new();
    let qkv = g.input("qkv", &[n.t, n.row()], DType::F32).unwrap();
    let rope = Rotary { mode: RopeMode::Adjacent, theta: THETA };
    let y = cache.attend_qkv(&mut g, 1, qkv, n.h, rope, true).unwrap();
    g.output(y).unwrap();
    (g, y)
}

#[test]
fn decode_steps_match_the_cpu_executor_node_by_node() {
    // rope_kv, then attention reading the caches it wrote: one token (split-key decode), 3
    // (decode of a few queries) and 17 (the tiled prefill kernel), at a nonzero position.
    let Some(ctx) = gpu() else { return };
    let s = seed("attend_qkv node by node");
    for (k, &(t, h, kv, d)) in [(1, 9, 3, 64), (3, 4, 1, 24), (17, 9, 3, 8), (1, 2, 2, 8)].iter().enumerate() {
        let n = Heads { t, h, kv, d };
        for dtype in dtypes(&ctx) {
            let rows = 40;
            let (g, _) = step_graph(&ctx, n, rows, dtype);
            let x = random(s + k as u64, t * n.row(), -1.0, 1.0);
            let pos = 1 + (s as usize + k) % (rows - t);
            let inputs = [("qkv", HostData::F32(x))];
            let bad = block(exec::compare(&ctx, &g, &inputs, &[(SLOT, pos as u32)], ATTN_TOL.0, ATTN_TOL.1)).unwrap();
            assert!(bad.is_none(), "{n:?} {dtype} cache at {pos} (seed {s}): {}", bad.unwrap());
        }
    }
}

/// q, k and v [t, heads, d] cut out of qkv [t, (H + 2·Hkv)·d] with copies (the unfused path).
fn split(g: &mut Graph, qkv: NodeId, n: Heads) -> [NodeId; 3] {
    let r = n.h + 2 * n.kv;
    let x = g.reshape(qkv, &[n.t, r, n.d]).unwrap();
    let x = g.permute(x, &[1, 0, 2]).unwrap();
    let x = g.reshape(x, &[r, n.t * n.d]).unwrap();
    [(0, n.h), (n.h, n.kv), (n.h + n.kv, n.kv)].map(|(first, count)| {
        let y = g.rows(x, first, count).unwrap();
        let y = g.reshape(y, &[count, n.t, n.d]).unwrap();
        g.permute(y, &[1, 0, 2]).unwrap()
    })
}

#[test]
fn attend_qkv_decodes_as_attend() {
    // Eight one-token steps through the fused step and through the unfused one (separate
    // ropes, the cache's append, the same attention), each over its own cache.
    let Some(ctx) = gpu() else { return };
    let s = seed("attend_qkv vs attend");
    let n = Heads { t: 1, h: 9, kv: 3, d: 64 };
    for dtype in dtypes(&ctx) {
        let rows = 12;
        let (fused, yf) = step_graph(&ctx, n, rows, dtype);
        let config = KvCacheConfig { layers: 2, max_ctx: rows, kv_heads: n.kv, head_dim: n.d, slot: SLOT };
        let cache = KvCache::new(&ctx, config).unwrap().with_dtype(dtype).unwrap();
        let mut g = Graph::new();
        let qkv = g.input("qkv", &[1, n.row()], DType::F32).unwrap();
        let [q, k, v] = split(&mut g, qkv, n);
        let q = g.rope(q, RopeMode::Adjacent, THETA, SLOT).unwrap();
        let k = g.rope(k, RopeMode::Adjacent, THETA, SLOT).unwrap();
        let yu = cache.attend(&mut g, 1, q, k, v, true).unwrap();
        g.output(yu).unwrap();
        let mut a = GpuExecutor::new(&ctx, &fused).unwrap();
        let mut b = GpuExecutor::new(&ctx, &g).unwrap();
        for pos in 0..8 {
            let x = random(s + pos, n.row(), -1.0, 1.0);
            let mut outs = Vec::new();
            for (exe, y) in [(&mut a, yf), (&mut b, yu)] {
                exe.poison_outputs();
                exe.set_input("qkv", &x).unwrap();
                exe.set_runtime_u32(SLOT, pos as u32).unwrap();
                exe.run().unwrap();
                outs.push(block(exe.read(y)).unwrap().to_f32());
            }
            common::assert_close(
                &format!("{dtype} cache, step {pos} (seed {s})"),
                &outs[0],
                &outs[1],
                ATTN_TOL.0,
                ATTN_TOL.1,
            );
        }
    }
}

#[test]
fn rope_kv_rejects_bad_shapes() {
    let mut g = Graph::new();
    let p = RopeKvParams { heads: 4, kv_heads: 2, mode: RopeMode::Adjacent, theta: 10000.0, slot: 0 };
    let qkv = g.input("qkv", &[2, 64], DType::F32).unwrap(); // (4 + 4) · 8
    let k = g.state("k", &[10, 16], DType::F32).unwrap();
    let v = g.state("v", &[10, 16], DType::F32).unwrap();
    let q = g.rope_kv(qkv, k, v, p).unwrap();
    assert_eq!(g.node(q).shape, vec![2, 4, 8]);
    let bad = g.input("bad", &[2, 60], DType::F32).unwrap();
    assert!(g.rope_kv(bad, k, v, p).unwrap_err().to_string().contains("head_dim"));
    let narrow = g.state("narrow", &[10, 12], DType::F32).unwrap();
    assert!(g.rope_kv(qkv, narrow, v, p).unwrap_err().to_string().contains("key cache"));
    assert!(g.rope_kv(qkv, k, k, p).is_err(), "one state for both caches");
    let v16 = g.state("v16", &[10, 16], DType::F16).unwrap();
    assert!(g.rope_kv(qkv, k, v16, p).is_err(), "mixed cache dtypes");
    let short = g.state("short", &[1, 16], DType::F32).unwrap();
    assert!(g.rope_kv(qkv, short, v, p).unwrap_err().to_string().contains("rows >= 2"));
    let input = g.input("not_state", &[10, 16], DType::F32).unwrap();
    assert!(g.rope_kv(qkv, input, v, p).unwrap_err().to_string().contains("state"));
    assert!(g.rope_kv(qkv, k, v, RopeKvParams { theta: 1.0, ..p }).is_err());
    assert!(g.rope_kv(qkv, k, v, RopeKvParams { slot: 99, ..p }).is_err());
}
