//! Softmax, permute and attention (fused prefill, split-key decode, the composite reference
//! path) against the CPU references, on fresh seeded inputs of awkward sizes, outputs poisoned
//! with NaN first; plus KV-cache decoding consistency, extreme logits and clear errors.
//!
//! Tolerances (f32 kernels vs f64 references; |got - want| <= atol + rtol·|want|):
//! - permute: a copy, exact (0, 0).
//! - softmax: rtol 1e-4, atol 1e-6. Vulkan allows exp() an error of 3 + 2·|x| ulp, i.e. up to
//!   ~70 ulp (8e-6 relative) for the |x| <= 32 of these inputs, and the row sum adds n/64 + 6
//!   roundings (strided partial sums, then a 64-way tree). Measured on lavapipe: 1e-6
//!   relative at n = 1031, so the bound leaves room for less precise exp() elsewhere.
//! - attention (fused, decode and composite): v is in [-1, 1) and every output a convex
//!   combination of v rows, so errors are absolute. An error δ in the scores moves an output
//!   by at most 2·δ·max|v|; f32 dot products of d terms round by ~sqrt(d)·eps·Σ|q·k|·scale
//!   (~1e-7 here), exp() as above. Measured on lavapipe: at most 2e-7 for d = 32..256 and
//!   L <= 257. atol 2e-5, rtol 1e-4: 100x the measured error, while a wrong mask, offset,
//!   head mapping or an unwritten (NaN-poisoned) element gives errors of 1e-2 and more.
//! - large logits (q, k in [-30, 30), scores ~ 300 times beyond exp's f32 range): score
//!   rounding grows with the logits (sqrt(d)·eps·Σ|q·k|·scale ~ 1e-3 in a score). Measured:
//!   5e-5 on the outputs; atol 1e-3. Overflowing dot products (q, k ~ 1e19) are only required
//!   to give finite outputs within the range of v.

mod common;

use common::{assert_close, assert_close_measured, block, gpu, random, seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webformer::cpu::attention::{self as cpu_attn, Dims};
use webformer::graph::AttentionImpl;
use webformer::kernels::{self, Operand};
use webformer::{
    cpu, exec, AttentionOptions, Context, CpuExecutor, DType, Error, GpuExecutor, Graph, HostData, KeyRange, KvCache,
    KvCacheConfig, NodeId, Op, Plan, SoftmaxOptions,
};

const SOFTMAX_TOL: (f32, f32) = (1e-4, 1e-6);
const ATTN_TOL: (f32, f32) = (1e-4, 2e-5);

/// Runs `g` with `inputs` and runtime slots, outputs poisoned first; returns the values of `ys`.
fn run(ctx: &Context, g: &Graph, ys: &[NodeId], inputs: &[(&str, HostData)], runtime: &[(u32, u32)]) -> Vec<Vec<f32>> {
    let mut exe = GpuExecutor::new(ctx, g).expect("executor");
    exe.poison_outputs();
    for (name, data) in inputs {
        exe.set_input_host(name, data).expect("input");
    }
    for &(slot, v) in runtime {
        exe.set_runtime_u32(slot, v).unwrap();
    }
    exe.run().expect("run");
    ys.iter().map(|y| block(exe.read(*y)).expect("read").to_f32()).collect()
}

/// A padding mask over `n` keys with about a quarter masked (key 0 masked when `first_masked`,
/// so that with causal masking the first query sees no key at all), as u32 or f32.
fn padding_mask(seed: u64, n: usize, as_f32: bool, first_masked: bool) -> HostData {
    let mut rng = StdRng::seed_from_u64(seed);
    let keep: Vec<bool> = (0..n).map(|j| !(j == 0 && first_masked) && rng.random_range(0..4) != 0).collect();
    if as_f32 {
        // -0.0 must mask like 0.0; any other value keeps.
        HostData::F32(
            keep.iter()
                .enumerate()
                .map(|(j, &k)| {
                    if k {
                        0.5 + j as f32
                    } else if j % 2 == 0 {
                        0.0
                    } else {
                        -0.0
                    }
                })
                .collect(),
        )
    } else {
        HostData::U32(keep.iter().enumerate().map(|(j, &k)| if k { 1 + j as u32 } else { 0 }).collect())
    }
}

// ---------------------------------------------------------------------------------------
// softmax

fn check_softmax(ctx: &Context, shape: &[usize], o: SoftmaxOptions, mask: Option<HostData>, x: Vec<f32>) {
    let mut g = Graph::new();
    let xn = g.input("x", shape, DType::F32).unwrap();
    let mut inputs = vec![("x", HostData::F32(x.clone()))];
    let mut opts = o;
    if let Some(m) = &mask {
        opts.mask = Some(g.input("mask", &[shape[shape.len() - 1]], m.dtype()).unwrap());
        inputs.push(("mask", m.clone()));
    }
    let y = g.softmax_with(xn, opts).unwrap();
    g.output(y).unwrap();
    let got = &run(ctx, &g, &[y], &inputs, &[])[0];
    let params =
        webformer::graph::SoftmaxParams { scale: o.scale, causal: o.causal, offset: o.offset, mask: mask.is_some() };
    let keep = mask.as_ref().map(cpu::softmax::mask_keep);
    let want = cpu::softmax::softmax(&x, shape, &params, keep.as_deref());
    assert!(got.iter().all(|v| v.is_finite()), "softmax {shape:?} {o:?}: non-finite output");
    assert_close(
        &format!("softmax {shape:?} {o:?} mask {:?}", mask.as_ref().map(|m| m.dtype())),
        got,
        &want,
        SOFTMAX_TOL.0,
        SOFTMAX_TOL.1,
    );
}

#[test]
fn softmax_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("softmax");
    for (k, &n) in [1usize, 7, 63, 64, 65, 257, 1031].iter().enumerate() {
        let rows = [1, 3, 5][k % 3];
        let shape = [2, rows, n];
        let x = random(s + k as u64, 2 * rows * n, -8.0, 8.0);
        check_softmax(&ctx, &shape, SoftmaxOptions::default(), None, x.clone());
        check_softmax(
            &ctx,
            &shape,
            SoftmaxOptions { scale: 0.37, causal: true, offset: (k % 3) as u32, mask: None },
            None,
            x.clone(),
        );
        let m = padding_mask(s + 100 + k as u64, n, k % 2 == 0, k % 3 == 0);
        check_softmax(&ctx, &shape, SoftmaxOptions { scale: 2.0, ..Default::default() }, Some(m.clone()), x.clone());
        check_softmax(&ctx, &shape, SoftmaxOptions { causal: true, ..Default::default() }, Some(m), x);
    }
    // Rank 1: one row.
    check_softmax(&ctx, &[13], SoftmaxOptions::default(), None, random(s, 13, -3.0, 3.0));
}

#[test]
fn softmax_rows_beyond_65535_workgroups() {
    let Some(ctx) = gpu() else { return };
    // One workgroup per row: 65539 rows wrap into a second grid dimension.
    let shape = [65539, 3];
    check_softmax(
        &ctx,
        &shape,
        SoftmaxOptions { causal: true, ..Default::default() },
        None,
        random(seed("softmax rows"), 65539 * 3, -4.0, 4.0),
    );
}

#[test]
fn softmax_extreme_values_stay_finite() {
    let Some(ctx) = gpu() else { return };
    // Rows: huge logits of both signs, +-f32::MAX (scaled by 4: overflow to inf before the
    // clamp), all equal, and one row that the mask hides entirely (all zeros).
    let x = vec![
        1e30,
        -1e30,
        5e29,
        0.0, //
        f32::MAX,
        -f32::MAX,
        1.0,
        f32::MAX, //
        88.0,
        88.0,
        88.0,
        88.0, //
        1.0,
        2.0,
        3.0,
        4.0,
    ];
    let mut g = Graph::new();
    let xn = g.input("x", &[4, 4], DType::F32).unwrap();
    let y = g.softmax_with(xn, SoftmaxOptions { scale: 4.0, ..Default::default() }).unwrap();
    g.output(y).unwrap();
    let got = &run(&ctx, &g, &[y], &[("x", HostData::F32(x.clone()))], &[])[0];
    assert!(got.iter().all(|v| v.is_finite()), "{got:?}");
    let want = [1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.25, 0.25, 0.25, 0.25];
    assert_close("softmax extremes", &got[..12], &want, 1e-6, 1e-7);
    check_softmax(&ctx, &[4, 4], SoftmaxOptions::default(), Some(HostData::U32(vec![0; 4])), x);
}

// ---------------------------------------------------------------------------------------
// permute

fn check_permute(ctx: &Context, shape: &[usize], perm: &[usize], seed: u64) {
    let x = random(seed, shape.iter().product(), -1.0, 1.0);
    let mut g = Graph::new();
    let xn = g.input("x", shape, DType::F32).unwrap();
    let y = g.permute(xn, perm).unwrap();
    g.output(y).unwrap();
    let got = &run(ctx, &g, &[y], &[("x", HostData::F32(x.clone()))], &[])[0];
    let p: Vec<u8> = perm.iter().map(|&p| p as u8).collect();
    assert_close(&format!("permute {shape:?} by {perm:?}"), got, &cpu::layout::permute(&x, shape, &p), 0.0, 0.0);
}

#[test]
fn permute_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("permute");
    check_permute(&ctx, &[1], &[0], s);
    check_permute(&ctx, &[13], &[0], s);
    check_permute(&ctx, &[5, 1], &[1, 0], s);
    check_permute(&ctx, &[7, 3, 5], &[1, 0, 2], s);
    check_permute(&ctx, &[7, 3, 5], &[2, 0, 1], s);
    // Every permutation of 4 dimensions.
    let dims = [2, 3, 5, 7];
    for code in 0..256usize {
        let perm: Vec<usize> = (0..4).map(|k| (code >> (2 * k)) & 3).collect();
        if (0..4).all(|d| perm.contains(&d)) {
            check_permute(&ctx, &dims, &perm, s + code as u64);
        }
    }
    // More than 65535 workgroups of 256: the grid wraps into y.
    check_permute(&ctx, &[4099, 4097], &[1, 0], s);
}

// ---------------------------------------------------------------------------------------
// fused attention vs composite vs reference

#[derive(Clone, Copy, Debug)]
struct Case {
    lq: usize,
    lk: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
    causal: bool,
    /// None, Some(false) = u32 mask, Some(true) = f32 mask.
    mask: Option<bool>,
}

struct Data {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    mask: Option<HostData>,
}

fn data(c: &Case, seed: u64, qk_range: f32) -> Data {
    Data {
        q: random(seed, c.lq * c.heads * c.d, -qk_range, qk_range),
        k: random(seed + 1, c.lk * c.kv_heads * c.d, -qk_range, qk_range),
        v: random(seed + 2, c.lk * c.kv_heads * c.d, -1.0, 1.0),
        mask: c.mask.map(|f| padding_mask(seed + 3, c.lk, f, seed.is_multiple_of(2))),
    }
}

fn dims(c: &Case) -> Dims {
    Dims { lq: c.lq, heads: c.heads, d: c.d, lk: c.lk, kv_heads: c.kv_heads }
}

fn reference(c: &Case, x: &Data, keys: KeyRange, runtime: &[u32]) -> Vec<f32> {
    let params = webformer::graph::AttentionParams {
        causal: c.causal,
        scale: 1.0 / (c.d as f32).sqrt(),
        keys,
        mask: x.mask.is_some(),
        imp: Default::default(),
    };
    let keep = x.mask.as_ref().map(cpu::softmax::mask_keep);
    cpu_attn::attention(&x.q, &x.k, &x.v, &dims(c), &params, runtime, keep.as_deref())
}

/// Graph inputs q, k, v (and mask) for a case.
fn attention_inputs(g: &mut Graph, c: &Case, x: &Data) -> (NodeId, NodeId, NodeId, AttentionOptions) {
    let q = g.input("q", &[c.lq, c.heads, c.d], DType::F32).unwrap();
    let k = g.input("k", &[c.lk, c.kv_heads, c.d], DType::F32).unwrap();
    let v = g.input("v", &[c.lk, c.kv_heads, c.d], DType::F32).unwrap();
    let mask = x.mask.as_ref().map(|m| g.input("mask", &[c.lk], m.dtype()).unwrap());
    (q, k, v, AttentionOptions { causal: c.causal, mask, ..Default::default() })
}

fn host_inputs(x: &Data) -> Vec<(&'static str, HostData)> {
    let mut v =
        vec![("q", HostData::F32(x.q.clone())), ("k", HostData::F32(x.k.clone())), ("v", HostData::F32(x.v.clone()))];
    if let Some(m) = &x.mask {
        v.push(("mask", m.clone()));
    }
    v
}

fn check_prefill(ctx: &Context, c: Case, seed: u64) {
    let x = data(&c, seed, 1.0);
    let mut g = Graph::new();
    let (q, k, v, o) = attention_inputs(&mut g, &c, &x);
    let fused = g.attention(q, k, v, o).unwrap();
    let composite = g.attention_composite(q, k, v, o).unwrap();
    g.output(fused).unwrap();
    g.output(composite).unwrap();
    let out = run(ctx, &g, &[fused, composite], &host_inputs(&x), &[]);
    let want = reference(&c, &x, KeyRange::All, &[]);
    let what = format!("{c:?} (seed {seed})");
    assert_close(&format!("fused {what}"), &out[0], &want, ATTN_TOL.0, ATTN_TOL.1);
    assert_close(&format!("composite {what}"), &out[1], &want, ATTN_TOL.0, ATTN_TOL.1);
    assert_close(&format!("fused vs composite {what}"), &out[0], &out[1], ATTN_TOL.0, ATTN_TOL.1);
}

/// (heads, kv_heads, d): odd head counts, GQA ratios 1, 3, 4, and head sizes that are not
/// multiples of 16 (48: the last slice is padded) or whose slices do not divide the
/// workgroup (96: 6 invocations per query, 10 queries, 4 invocations idle).
const HEADS: &[(usize, usize, usize)] = &[(3, 3, 32), (3, 1, 64), (8, 2, 32), (5, 5, 64), (12, 4, 48), (4, 1, 96)];

#[test]
fn fused_attention_matches_composite_and_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("attention");
    let mut n = 0;
    for (i, &l) in [1usize, 7, 63, 64, 65, 257].iter().enumerate() {
        for causal in [false, true] {
            let (heads, kv_heads, d) = HEADS[(2 * i + causal as usize) % HEADS.len()];
            let mask = [None, Some(false), Some(true)][(i + causal as usize) % 3];
            check_prefill(&ctx, Case { lq: l, lk: l, heads, kv_heads, d, causal, mask }, s + n);
            n += 10;
        }
    }
    // Head sizes 128 and 256, GQA, causal with a mask.
    check_prefill(&ctx, Case { lq: 65, lk: 65, heads: 2, kv_heads: 1, d: 128, causal: true, mask: Some(false) }, s + n);
    check_prefill(&ctx, Case { lq: 23, lk: 23, heads: 2, kv_heads: 2, d: 256, causal: true, mask: None }, s + n + 5);
    // More keys than queries: cross-attention, and causal queries at the last positions
    // (a later chunk of a prompt: positions 61..69 against keys 0..69).
    check_prefill(
        &ctx,
        Case { lq: 7, lk: 65, heads: 3, kv_heads: 1, d: 32, causal: false, mask: Some(true) },
        s + n + 10,
    );
    check_prefill(&ctx, Case { lq: 9, lk: 70, heads: 4, kv_heads: 4, d: 64, causal: true, mask: None }, s + n + 20);
}

// ---------------------------------------------------------------------------------------
// decode (split keys + merge) and attention over a cache with a runtime length

#[test]
fn decode_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("decode");
    // A cache of capacity 1031 (5 parts of whole 64-key steps), of which `len` rows are keys.
    let cap = 1031;
    let cases = [
        (1usize, 1usize, 3, 3, 32, None),
        (7, 1, 3, 1, 64, Some(false)),
        (63, 1, 8, 2, 32, None),
        (64, 1, 4, 1, 64, Some(true)),
        (65, 3, 12, 4, 48, None),
        (257, 1, 5, 5, 64, Some(false)),
        (1000, 2, 4, 1, 64, None),
        (1031, 1, 2, 1, 128, Some(true)),
        (300, 1, 2, 2, 256, Some(false)),
    ];
    for (n, &(len, lq, heads, kv_heads, d, mask)) in cases.iter().enumerate() {
        let c = Case { lq, lk: cap, heads, kv_heads, d, causal: true, mask };
        let x = data(&c, s + 10 * n as u64, 1.0);
        let past = (len - lq) as u32; // the queries are the last lq of the len positions
        let mut g = Graph::new();
        let (q, k, v, mut o) = attention_inputs(&mut g, &c, &x);
        o.keys = KeyRange::Runtime(7);
        let dec = g.attention_decode(q, k, v, o).unwrap();
        let pre = g.attention(q, k, v, o).unwrap();
        g.output(dec).unwrap();
        g.output(pre).unwrap();
        let out = run(&ctx, &g, &[dec, pre], &host_inputs(&x), &[(7, past)]);
        let mut rt = [0u32; 16];
        rt[7] = past;
        let want = reference(&c, &x, KeyRange::Runtime(7), &rt);
        let what = format!("len {len}: {c:?} (seed {})", s + 10 * n as u64);
        assert_close(&format!("decode {what}"), &out[0], &want, ATTN_TOL.0, ATTN_TOL.1);
        assert_close(&format!("prefill over a cache {what}"), &out[1], &want, ATTN_TOL.0, ATTN_TOL.1);
        // Node by node against the CPU executor (the partials are the kernel's own scratch).
        let inputs = host_inputs(&x);
        let inputs: Vec<(&str, HostData)> = inputs.iter().map(|(n, d)| (*n, d.clone())).collect();
        let bad = block(exec::compare(&ctx, &g, &inputs, &[(7, past)], 1e-3, 1e-4)).unwrap();
        assert!(bad.is_none(), "{what}: {}", bad.unwrap());
    }
}

#[test]
fn split_key_decode_merges_several_parts() {
    // The split-key kernel's parts are scratch of one node now: split 1 to 7 ways, with
    // several non-empty parts to merge, the node must equal the direct reference.
    let Some(ctx) = gpu() else { return };
    let s = seed("decode parts");
    for (len, splits) in [(2usize, 1u32), (5, 3), (64, 2), (65, 2), (300, 5), (1000, 7)] {
        let c = Case { lq: 2, lk: 1024, heads: 3, kv_heads: 1, d: 8, causal: true, mask: Some(false) };
        let x = data(&c, s + len as u64, 2.0);
        let mut rt = [0u32; 16];
        rt[0] = (len - 2) as u32;
        let mut g = Graph::new();
        let (q, k, v, mut o) = attention_inputs(&mut g, &c, &x);
        o.keys = KeyRange::Runtime(0);
        o.scale = Some(0.3);
        let y = g.attention_decode_split(q, k, v, o, splits).unwrap();
        g.output(y).unwrap();
        let out = run(&ctx, &g, &[y], &host_inputs(&x), &[(0, rt[0])]);
        let params = webformer::graph::AttentionParams {
            causal: true,
            scale: 0.3,
            keys: KeyRange::Runtime(0),
            mask: true,
            imp: Default::default(),
        };
        let keep = cpu::softmax::mask_keep(x.mask.as_ref().unwrap());
        let direct = cpu_attn::attention(&x.q, &x.k, &x.v, &dims(&c), &params, &rt, Some(&keep));
        assert_close(&format!("len {len} in {splits} parts"), &out[0], &direct, ATTN_TOL.0, ATTN_TOL.1);
    }
}

/// The keep flags of a case's mask (every key kept without one).
fn keep_flags(c: &Case, x: &Data) -> Vec<bool> {
    x.mask.as_ref().map(mask_flags).unwrap_or_else(|| vec![true; c.lk])
}

/// Runs `imp` over a case whose keys are the first `len` rows of k and v: `KeyRange::All` when
/// len == lk, else a cache with the length in runtime slot 1. Returns the output, poisoned first.
fn run_attention(ctx: &Context, c: &Case, x: &Data, len: usize, imp: AttentionImpl) -> Vec<f32> {
    let mut g = Graph::new();
    let (q, k, v, mut o) = attention_inputs(&mut g, c, x);
    o.imp = imp;
    let past = (len - c.lq) as u32;
    let runtime = if len == c.lk { vec![] } else { vec![(1, past)] };
    if !runtime.is_empty() {
        o.keys = KeyRange::Runtime(1);
    }
    let y = g.attention(q, k, v, o).unwrap();
    g.output(y).unwrap();
    run(ctx, &g, &[y], &host_inputs(x), &runtime).remove(0)
}

/// The launch grids of an attention node with these options, as lowering computes them.
fn grids(ctx: &Context, c: &Case, keys: KeyRange, imp: AttentionImpl) -> Vec<[u32; 3]> {
    let params = webformer::graph::AttentionParams { causal: c.causal, scale: 1.0, keys, mask: false, imp };
    let (sq, skv) = ([c.lq, c.heads, c.d], [c.lk, c.kv_heads, c.d]);
    let ops = [
        Operand { shape: &sq, dtype: DType::F32 },
        Operand { shape: &skv, dtype: DType::F32 },
        Operand { shape: &skv, dtype: DType::F32 },
    ];
    let lowered = kernels::lower(ctx, &Op::Attention(params), &ops, &sq).unwrap();
    lowered.dispatches.iter().map(|d| d.workgroups).collect()
}

#[test]
fn attention_grids_beyond_65535_workgroups() {
    // One workgroup per (query tile, head) in prefill and per (part, head, query) in decode:
    // past 65535 of them the grid wraps into y and the shaders rebuild the flat index. Tiny
    // heads (d = 4) and few keys keep it cheap; the excess groups of the wrapped grid (up to
    // 65531 here) must write nothing, which the NaN poisoning and the reference check.
    let Some(ctx) = gpu() else { return };
    let s = seed("attention grids");
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    // Prefill: 65539 heads (prime) of one query tile each, GQA onto one KV head, causal + mask.
    let c = Case { lq: 3, lk: 5, heads: 65539, kv_heads: 1, d: 4, causal: true, mask: Some(false) };
    let tiles = c.heads * c.lq.div_ceil(webformer::kernels::attention::prefill_layout(c.d).queries);
    assert!(tiles > 65535, "the case must need more than 65535 workgroups unwrapped, got {tiles}");
    let g = grids(&ctx, &c, KeyRange::All, AttentionImpl::Tiled);
    assert_eq!(g.len(), 1);
    assert!(g[0][0] <= max && g[0][0] as usize * g[0][1] as usize >= tiles, "prefill grid {g:?} for {tiles} tiles");
    let x = data(&c, s, 1.0);
    let want = naive_attention(&c, &x, &keep_flags(&c, &x), c.lk);
    let got = run_attention(&ctx, &c, &x, c.lk, AttentionImpl::Tiled);
    assert_close(&format!("prefill, {tiles} workgroups, grid {g:?} (seed {s})"), &got, &want, ATTN_TOL.0, ATTN_TOL.1);
    // Decode: 2 queries x 1031 heads x 33 parts = 68046 workgroups over a 100-row cache holding
    // 70 keys: parts 0 and 1 hold keys (64 + 6), the other 31 are empty and must merge as such.
    let c = Case { lq: 2, lk: 100, heads: 1031, kv_heads: 1, d: 4, causal: true, mask: None };
    let parts = 2 * 1031 * 33;
    let g = grids(&ctx, &c, KeyRange::Runtime(1), AttentionImpl::SplitKeys(33));
    assert_eq!(g.len(), 2, "decode and merge");
    assert!(g[0][0] <= max && g[0][0] as usize * g[0][1] as usize >= parts, "decode grid {g:?} for {parts} parts");
    let x = data(&c, s + 10, 1.0);
    let want = naive_attention(&c, &x, &keep_flags(&c, &x), 70);
    let got = run_attention(&ctx, &c, &x, 70, AttentionImpl::SplitKeys(33));
    assert_close(&format!("decode, {parts} workgroups, grid {g:?} (seed {s})"), &got, &want, ATTN_TOL.0, ATTN_TOL.1);
}

#[test]
fn head_sizes_4_to_256_match_reference() {
    // Both ends of the head-size range. Prefill (one invocation per 64 dimensions, the row
    // padded to whole slices): d <= 28 pads 4 to 60 zero columns into a 16-vec4 slice and takes
    // 21 keys per tile; 160 and 200 use 3 and 4 invocations per query (21 and 16 queries per
    // workgroup, 7 and 5 keys per tile), the last slice partly padding; 256 is the most there
    // is. Decode (one invocation per key, the output's d/4 vec4 columns spread over 64
    // invocations in 64 / (d/4) ways): 4 -> 64 ways, 12 -> 21 ways with one invocation idle,
    // 28 -> 9 ways, 200 -> 1 way with 14 invocations idle, 256 -> one column each. Each size
    // runs the tiled kernel over all keys (causal, masked, 70 keys: several tiles) and, over a
    // 300-row cache holding 200 keys, the tiled kernel and split-key decode in 3 parts (keys
    // 0..128 and 128..200, one empty part), against the naive f64 loop and the library's
    // reference. Tolerance as for every attention test (ATTN_TOL).
    let Some(ctx) = gpu() else { return };
    let s = seed("head sizes");
    let mut worst = 0f32;
    for (n, &d) in [4usize, 8, 12, 28, 160, 200, 252, 256].iter().enumerate() {
        let seed = s + 10 * n as u64;
        let c = Case { lq: 70, lk: 70, heads: 3, kv_heads: 1, d, causal: true, mask: Some(n % 2 == 0) };
        let x = data(&c, seed, 1.0);
        let naive = naive_attention(&c, &x, &keep_flags(&c, &x), c.lk);
        let what = format!("d = {d}, {c:?} (seed {seed})");
        assert_close(
            &format!("library reference vs naive, {what}"),
            &reference(&c, &x, KeyRange::All, &[]),
            &naive,
            1e-5,
            1e-6,
        );
        let got = run_attention(&ctx, &c, &x, c.lk, AttentionImpl::Tiled);
        worst = worst.max(assert_close_measured(&format!("prefill {what}"), &got, &naive, ATTN_TOL.0, ATTN_TOL.1).0);

        let c = Case { lq: 2, lk: 300, heads: 4, kv_heads: 2, d, causal: true, mask: Some(n % 2 == 1) };
        let x = data(&c, seed + 5, 1.0);
        let naive = naive_attention(&c, &x, &keep_flags(&c, &x), 200);
        let mut rt = [0u32; 16];
        rt[1] = 198;
        let what = format!("d = {d}, 200 of {c:?} (seed {})", seed + 5);
        assert_close(
            &format!("library reference vs naive, {what}"),
            &reference(&c, &x, KeyRange::Runtime(1), &rt),
            &naive,
            1e-5,
            1e-6,
        );
        for imp in [AttentionImpl::Tiled, AttentionImpl::SplitKeys(3)] {
            let got = run_attention(&ctx, &c, &x, 200, imp);
            worst =
                worst.max(assert_close_measured(&format!("{imp:?} {what}"), &got, &naive, ATTN_TOL.0, ATTN_TOL.1).0);
        }
    }
    eprintln!("head sizes 4..256: largest |GPU - naive f64| {worst:e}");
}

#[test]
fn cache_positions_beyond_capacity_are_refused() {
    let Some(ctx) = gpu() else { return };
    let mut g = Graph::new();
    let q = g.input("q", &[3, 2, 8], DType::F32).unwrap();
    let k = g.input("k", &[10, 2, 8], DType::F32).unwrap();
    let y = g.attention_decode(q, k, k, AttentionOptions { keys: KeyRange::Runtime(2), ..Default::default() }).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input("q", &[0.0f32; 48]).unwrap();
    exe.set_input("k", &[0.0f32; 160]).unwrap();
    exe.set_runtime_u32(2, 7).unwrap();
    exe.run().unwrap(); // positions 7..10: fits exactly
    exe.set_runtime_u32(2, 8).unwrap();
    let e = exe.run().unwrap_err().to_string();
    assert!(e.contains("attention") && e.contains("8..11") && e.contains("do not fit"), "{e}");
}

// ---------------------------------------------------------------------------------------
// KV cache: prompt + decode steps == one prefill over the whole sequence

struct Sequence {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl Sequence {
    fn rows(v: &[f32], width: usize, a: usize, b: usize) -> Vec<f32> {
        v[a * width..b * width].to_vec()
    }
}

/// A graph that appends `t` tokens to the cache and attends over it (prefill kernel for
/// t > 4, decode kernel otherwise).
fn step_graph(cache: &KvCache, t: usize, heads: usize) -> (Graph, NodeId) {
    let c = cache.config();
    let mut g = Graph::new();
    let q = g.input("q", &[t, heads, c.head_dim], DType::F32).unwrap();
    let k = g.input("k", &[t, c.kv_heads, c.head_dim], DType::F32).unwrap();
    let v = g.input("v", &[t, c.kv_heads, c.head_dim], DType::F32).unwrap();
    let y = cache.attend(&mut g, 0, q, k, v, true).unwrap();
    g.output(y).unwrap();
    (g, y)
}

fn feed(exe: &mut GpuExecutor, s: &Sequence, a: usize, b: usize, qw: usize, kw: usize) {
    exe.set_input("q", &Sequence::rows(&s.q, qw, a, b)).unwrap();
    exe.set_input("k", &Sequence::rows(&s.k, kw, a, b)).unwrap();
    exe.set_input("v", &Sequence::rows(&s.v, kw, a, b)).unwrap();
}

#[test]
fn prompt_then_decode_steps_equal_one_prefill() {
    let Some(ctx) = gpu() else { return };
    let s = seed("kv decode");
    let (heads, kv_heads, d) = (6, 2, 64);
    let (prompt, steps, chunk) = (37, 6, 9); // prompt, decode steps, then a second prompt chunk
    let total = prompt + steps + chunk;
    let (qw, kw) = (heads * d, kv_heads * d);
    let seq = Sequence {
        q: random(s, total * qw, -1.0, 1.0),
        k: random(s + 1, total * kw, -1.0, 1.0),
        v: random(s + 2, total * kw, -1.0, 1.0),
    };
    // The whole sequence in one causal prefill: the expected outputs.
    let c = Case { lq: total, lk: total, heads, kv_heads, d, causal: true, mask: None };
    let x = Data { q: seq.q.clone(), k: seq.k.clone(), v: seq.v.clone(), mask: None };
    let mut g = Graph::new();
    let (q, k, v, o) = attention_inputs(&mut g, &c, &x);
    let full = g.attention(q, k, v, o).unwrap();
    g.output(full).unwrap();
    let full = run(&ctx, &g, &[full], &host_inputs(&x), &[]).remove(0);
    assert_close("one prefill vs reference", &full, &reference(&c, &x, KeyRange::All, &[]), ATTN_TOL.0, ATTN_TOL.1);

    let mut cache =
        KvCache::new(&ctx, KvCacheConfig { layers: 1, max_ctx: 64, kv_heads, head_dim: d, slot: 3 }).unwrap();
    let (pg, py) = step_graph(&cache, prompt, heads);
    let (cg, cy) = step_graph(&cache, chunk, heads);
    let (dg, dy) = step_graph(&cache, 1, heads);
    let mut shared = webformer::SharedBuffers::new();
    let mut pre = GpuExecutor::with_shared(&ctx, &pg, &Plan::new(&pg), &mut shared).unwrap();
    let mut chunk_exe = GpuExecutor::with_shared(&ctx, &cg, &Plan::new(&cg), &mut shared).unwrap();
    let mut dec = GpuExecutor::with_shared(&ctx, &dg, &Plan::new(&dg), &mut shared).unwrap();
    for round in 0..2 {
        pre.poison_outputs();
        feed(&mut pre, &seq, 0, prompt, qw, kw);
        cache.step(&mut pre, prompt).unwrap();
        let got = block(pre.read(py)).unwrap().to_f32();
        assert_close(&format!("round {round}: prompt"), &got, &full[..prompt * qw], ATTN_TOL.0, ATTN_TOL.1);
        for t in prompt..prompt + steps {
            dec.poison_outputs();
            feed(&mut dec, &seq, t, t + 1, qw, kw);
            cache.step(&mut dec, 1).unwrap();
            let got = block(dec.read(dy)).unwrap().to_f32();
            assert_close(
                &format!("round {round}: decode step at position {t}"),
                &got,
                &full[t * qw..(t + 1) * qw],
                ATTN_TOL.0,
                ATTN_TOL.1,
            );
        }
        // Truncate away the last two steps and redo them: same outputs.
        cache.truncate(prompt + steps - 2).unwrap();
        for t in prompt + steps - 2..prompt + steps {
            feed(&mut dec, &seq, t, t + 1, qw, kw);
            cache.step(&mut dec, 1).unwrap();
            let got = block(dec.read(dy)).unwrap().to_f32();
            assert_close(
                &format!("round {round}: after truncate, position {t}"),
                &got,
                &full[t * qw..(t + 1) * qw],
                ATTN_TOL.0,
                ATTN_TOL.1,
            );
        }
        // A second chunk of prompt through the prefill kernel at a runtime position.
        let a = prompt + steps;
        chunk_exe.poison_outputs();
        feed(&mut chunk_exe, &seq, a, total, qw, kw);
        cache.step(&mut chunk_exe, chunk).unwrap();
        let got = block(chunk_exe.read(cy)).unwrap().to_f32();
        assert_close(&format!("round {round}: chunk at {a}"), &got, &full[a * qw..], ATTN_TOL.0, ATTN_TOL.1);
        assert_eq!(cache.len(), total);
        // Full: one more prompt does not fit.
        feed(&mut pre, &seq, 0, prompt, qw, kw);
        let e = cache.step(&mut pre, prompt).unwrap_err().to_string();
        assert!(e.contains("52 of 64 positions") && e.contains("37 more do not fit"), "{e}");
        // Reset zeroes the states (read through the prefill executor, which shares them).
        cache.reset(&mut pre).unwrap();
        assert_eq!(cache.len(), 0);
        let (kname, _) = cache.state_names(0);
        let state = pg.nodes().iter().position(|n| n.label() == format!("state '{kname}'")).map(NodeId).unwrap();
        assert!(block(pre.read(state)).unwrap().to_f32().iter().all(|&v| v == 0.0), "reset must zero the cache");
    }
    // Sharing needs the same shape: a cache of another length is refused with both shapes.
    let other = KvCache::new(&ctx, KvCacheConfig { max_ctx: 65, ..*cache.config() }).unwrap();
    let (og, _) = step_graph(&other, 1, heads);
    let e =
        GpuExecutor::with_shared(&ctx, &og, &Plan::new(&og), &mut shared).err().expect("shape mismatch").to_string();
    assert!(
        e.contains("kv0.k") && e.contains(&(65 * 128 * 4).to_string()) && e.contains(&(64 * 128 * 4).to_string()),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// f16 keys and values (half-precision KV caches)

fn to_f16(v: &[f32]) -> Vec<half::f16> {
    v.iter().map(|&x| half::f16::from_f32(x)).collect()
}

fn f16_rounded(v: &[f32]) -> Vec<f32> {
    to_f16(v).iter().map(|x| x.to_f32()).collect()
}

/// True when the adapter has SHADER_F16; otherwise checks that f16 attention is refused with
/// the feature named and returns false (a printed skip), or fails when WEBFORMER_REQUIRE_FEATURES
/// names shader-f16.
fn f16_or_refused(ctx: &Context) -> bool {
    if ctx.has(wgpu::Features::SHADER_F16) {
        return true;
    }
    let mut g = Graph::new();
    let q = g.input("q", &[1, 2, 32], DType::F32).unwrap();
    let k = g.input("k", &[4, 2, 32], DType::F16).unwrap();
    let y = g.attention(q, k, k, AttentionOptions::default()).unwrap();
    g.output(y).unwrap();
    let e = GpuExecutor::new(ctx, &g).err().expect("f16 attention without SHADER_F16").to_string();
    assert!(e.contains("SHADER_F16"), "{e}");
    // Refusal checked; the f16 kernels themselves are skipped, unless CI requires shader-f16.
    common::require_feature(ctx, wgpu::Features::SHADER_F16, "shader-f16")
}

#[test]
fn f16_keys_and_values_match_reference() {
    let Some(ctx) = gpu() else { return };
    if !f16_or_refused(&ctx) {
        return;
    }
    let s = seed("attention f16 kv");
    // Prefill over all keys, and prefill / decode over a cache with a runtime length.
    let cases = [
        (65usize, 65usize, 65usize, 3, 1, 64, true, Some(false)),
        (7, 7, 7, 5, 5, 32, false, None),
        (257, 257, 257, 4, 2, 128, true, None),
        (1, 300, 300, 12, 4, 48, true, Some(true)),
        (3, 1031, 1000, 4, 1, 64, true, None),
    ];
    for (n, &(lq, lk, len, heads, kv_heads, d, causal, mask)) in cases.iter().enumerate() {
        let c = Case { lq, lk, heads, kv_heads, d, causal, mask };
        let x = data(&c, s + 10 * n as u64, 1.0);
        let cache = lk != len || lq != lk;
        let past = (len - lq) as u32;
        let mut g = Graph::new();
        let q = g.input("q", &[lq, heads, d], DType::F32).unwrap();
        let k = g.input("k", &[lk, kv_heads, d], DType::F16).unwrap();
        let v = g.input("v", &[lk, kv_heads, d], DType::F16).unwrap();
        let mask_node = x.mask.as_ref().map(|m| g.input("mask", &[lk], m.dtype()).unwrap());
        let keys = if cache { KeyRange::Runtime(5) } else { KeyRange::All };
        let o = AttentionOptions { causal, mask: mask_node, keys, ..Default::default() };
        let pre = g.attention(q, k, v, o).unwrap();
        let dec = g.attention_decode(q, k, v, o).unwrap();
        g.output(pre).unwrap();
        g.output(dec).unwrap();
        let mut inputs = vec![
            ("q", HostData::F32(x.q.clone())),
            ("k", HostData::F16(to_f16(&x.k))),
            ("v", HostData::F16(to_f16(&x.v))),
        ];
        inputs.extend(x.mask.clone().map(|m| ("mask", m)));
        let runtime = if cache { vec![(5, past)] } else { vec![] };
        let out = run(&ctx, &g, &[pre, dec], &inputs, &runtime);
        // The reference over the same f16 values, widened: the kernels compute in f32 after
        // widening exactly, so the f32 tolerance holds.
        let rounded = Data { q: x.q.clone(), k: f16_rounded(&x.k), v: f16_rounded(&x.v), mask: x.mask.clone() };
        let mut rt = [0u32; 16];
        rt[5] = past;
        let want = reference(&c, &rounded, keys, &rt);
        let what = format!("f16 k/v {c:?} len {len} (seed {})", s + 10 * n as u64);
        assert_close(&format!("prefill {what}"), &out[0], &want, ATTN_TOL.0, ATTN_TOL.1);
        assert_close(&format!("decode {what}"), &out[1], &want, ATTN_TOL.0, ATTN_TOL.1);
        // The CPU executor runs the same graph (f16 inputs widened) to the same values.
        let bad = block(exec::compare(&ctx, &g, &inputs, &runtime, 1e-3, 1e-4)).unwrap();
        assert!(bad.is_none(), "{what}: {}", bad.unwrap());
    }
}

#[test]
fn f16_cache_prompt_then_decode_equals_prefill_of_rounded_values() {
    let Some(ctx) = gpu() else { return };
    if !f16_or_refused(&ctx) {
        return;
    }
    let s = seed("f16 kv cache");
    let (heads, kv_heads, d, prompt, steps) = (6, 2, 64, 23, 5);
    let total = prompt + steps;
    let (qw, kw) = (heads * d, kv_heads * d);
    let seq = Sequence {
        q: random(s, total * qw, -1.0, 1.0),
        k: random(s + 1, total * kw, -1.0, 1.0),
        v: random(s + 2, total * kw, -1.0, 1.0),
    };
    let c = Case { lq: total, lk: total, heads, kv_heads, d, causal: true, mask: None };
    let rounded = Data { q: seq.q.clone(), k: f16_rounded(&seq.k), v: f16_rounded(&seq.v), mask: None };
    let want = reference(&c, &rounded, KeyRange::All, &[]);
    let mut cache = KvCache::new(&ctx, KvCacheConfig { layers: 1, max_ctx: 40, kv_heads, head_dim: d, slot: 2 })
        .unwrap()
        .with_dtype(DType::F16)
        .unwrap();
    assert_eq!(cache.bytes(), 2 * 40 * kw as u64 * 2, "f16 halves the cache");
    let (pg, py) = step_graph(&cache, prompt, heads);
    let (dg, dy) = step_graph(&cache, 1, heads);
    let mut shared = webformer::SharedBuffers::new();
    let mut pre = GpuExecutor::with_shared(&ctx, &pg, &Plan::new(&pg), &mut shared).unwrap();
    let mut dec = GpuExecutor::with_shared(&ctx, &dg, &Plan::new(&dg), &mut shared).unwrap();
    feed(&mut pre, &seq, 0, prompt, qw, kw);
    cache.step(&mut pre, prompt).unwrap();
    assert_close(
        "f16 cache: prompt",
        &block(pre.read(py)).unwrap().to_f32(),
        &want[..prompt * qw],
        ATTN_TOL.0,
        ATTN_TOL.1,
    );
    for t in prompt..total {
        feed(&mut dec, &seq, t, t + 1, qw, kw);
        cache.step(&mut dec, 1).unwrap();
        assert_close(
            &format!("f16 cache: decode at {t}"),
            &block(dec.read(dy)).unwrap().to_f32(),
            &want[t * qw..(t + 1) * qw],
            ATTN_TOL.0,
            ATTN_TOL.1,
        );
    }
    // The cache holds exactly the keys rounded to f16 (round to nearest even, as half does).
    let (kname, _) = cache.state_names(0);
    let state = dg.nodes().iter().position(|n| n.label() == format!("state '{kname}'")).map(NodeId).unwrap();
    match block(dec.read(state)).unwrap() {
        HostData::F16(k) => assert_eq!(&k[..total * kw], &to_f16(&seq.k)[..], "cached keys"),
        other => panic!("the f16 cache read back as {:?}", other.dtype()),
    }
}

// ---------------------------------------------------------------------------------------
// numerics at the extremes

#[test]
fn large_logits_stay_finite() {
    let Some(ctx) = gpu() else { return };
    let s = seed("large logits");
    // q, k in [-30, 30), d = 64: scores of standard deviation ~300 after the 1/8 scale.
    for (n, &(l, causal, mask)) in [(65usize, true, None), (130, false, Some(false))].iter().enumerate() {
        let c = Case { lq: l, lk: l, heads: 3, kv_heads: 1, d: 64, causal, mask };
        let x = data(&c, s + n as u64 * 10, 30.0);
        let mut g = Graph::new();
        let (q, k, v, o) = attention_inputs(&mut g, &c, &x);
        let fused = g.attention(q, k, v, o).unwrap();
        let dec = g.attention_decode(q, k, v, o).unwrap();
        let comp = g.attention_composite(q, k, v, o).unwrap();
        for y in [fused, dec, comp] {
            g.output(y).unwrap();
        }
        let out = run(&ctx, &g, &[fused, dec, comp], &host_inputs(&x), &[]);
        let want = reference(&c, &x, KeyRange::All, &[]);
        for (name, got) in ["fused", "decode", "composite"].iter().zip(&out) {
            assert!(got.iter().all(|v| v.is_finite()), "{name} {c:?}: non-finite output");
            assert_close(&format!("{name} large logits {c:?}"), got, &want, 0.0, 1e-3);
        }
    }
    // Dot products that overflow f32 (q, k ~ 1e19): finite, within v's range.
    let c = Case { lq: 9, lk: 9, heads: 2, kv_heads: 2, d: 32, causal: true, mask: None };
    let mut x = data(&c, s + 99, 1.0);
    x.q.iter_mut().for_each(|v| *v *= 1e19);
    x.k.iter_mut().for_each(|v| *v *= 1e19);
    let mut g = Graph::new();
    let (q, k, v, o) = attention_inputs(&mut g, &c, &x);
    let fused = g.attention(q, k, v, o).unwrap();
    let dec = g.attention_decode(q, k, v, o).unwrap();
    g.output(fused).unwrap();
    g.output(dec).unwrap();
    for got in run(&ctx, &g, &[fused, dec], &host_inputs(&x), &[]) {
        assert!(got.iter().all(|v| v.is_finite() && v.abs() <= 1.0), "overflowing logits: {got:?}");
    }
}

// ---------------------------------------------------------------------------------------
// errors

#[test]
fn kv_cache_sizing_errors_name_the_limit() {
    let limits = wgpu::Limits::default(); // WebGPU's defaults: 128 MiB per storage binding
    let fit = KvCache::max_ctx_for(&limits, 8, 128);
    assert_eq!(fit, (128 << 20) / (8 * 128 * 4));
    let cfg = KvCacheConfig { layers: 2, max_ctx: fit, kv_heads: 8, head_dim: 128, slot: 0 };
    let cache = KvCache::with_limits(&limits, cfg).unwrap();
    assert_eq!(cache.bytes(), 2 * 2 * (128 << 20));
    let e = KvCache::with_limits(&limits, KvCacheConfig { max_ctx: fit + 1, ..cfg }).unwrap_err();
    assert!(matches!(e, Error::Limit { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("32769 positions")
            && msg.contains(&format!("at most {fit} positions fit"))
            && msg.contains("max_storage_buffer_binding_size"),
        "{msg}"
    );
    let e = KvCache::with_limits(&limits, KvCacheConfig { slot: 16, ..cfg }).unwrap_err().to_string();
    assert!(e.contains("runtime slot 16"), "{e}");
    let e = KvCache::with_limits(&limits, KvCacheConfig { kv_heads: 0, ..cfg }).unwrap_err().to_string();
    assert!(e.contains("at least one"), "{e}");
    let mut cache = KvCache::with_limits(&limits, KvCacheConfig { max_ctx: 16, ..cfg }).unwrap();
    let e = cache.truncate(3).unwrap_err().to_string();
    assert!(e.contains("only shortens"), "{e}");
    assert!(cache.set_decode_splits(0).is_err() && cache.set_decode_splits(65).is_err());
    cache.set_decode_splits(3).unwrap();
    assert_eq!(cache.decode_splits(), 3);
    // On the device at hand: its own limit.
    let Some(ctx) = gpu() else { return };
    let fit = KvCache::max_ctx_for(ctx.limits(), 4, 64);
    assert!(KvCache::new(&ctx, KvCacheConfig { layers: 1, max_ctx: fit, kv_heads: 4, head_dim: 64, slot: 0 }).is_ok());
    let e = KvCache::new(&ctx, KvCacheConfig { layers: 1, max_ctx: fit + 1, kv_heads: 4, head_dim: 64, slot: 0 })
        .unwrap_err();
    assert!(matches!(e, Error::Limit { .. }), "{e}");
}

#[test]
fn attention_builders_give_clear_errors() {
    let mut g = Graph::new();
    let q = g.input("q", &[5, 6, 64], DType::F32).unwrap();
    let k = g.input("k", &[5, 4, 64], DType::F32).unwrap();
    let k2 = g.input("k2", &[5, 2, 64], DType::F32).unwrap();
    let v3 = g.input("v3", &[5, 2, 32], DType::F32).unwrap();
    let q6 = g.input("q6", &[5, 2, 6], DType::F32).unwrap();
    let q260 = g.input("q260", &[5, 2, 260], DType::F32).unwrap();
    let short = g.input("short", &[3, 2, 64], DType::F32).unwrap();
    let m = g.input("m", &[4], DType::U32).unwrap();
    let mh = g.input("mh", &[5], DType::F16).unwrap();
    let none = AttentionOptions::default();
    let err = |r: webformer::Result<NodeId>| r.unwrap_err().to_string();
    let e = err(g.attention(q, k, k, none));
    assert!(e.contains("6 query heads") && e.contains("4 KV heads"), "{e}");
    let e = err(g.attention(q, k2, v3, none));
    assert!(e.contains("same shape") && e.contains("[5, 2, 32]"), "{e}");
    let e = err(g.attention(q6, k2, k2, none));
    assert!(e.contains("same head size"), "{e}");
    let e = err(g.attention(q6, q6, q6, none));
    assert!(e.contains("multiple of 4") && e.contains("got 6"), "{e}");
    let e = err(g.attention(q260, q260, q260, none));
    assert!(e.contains("at most 256"), "{e}");
    let e = err(g.attention(q, short, short, AttentionOptions { causal: true, ..none }));
    assert!(e.contains("at least as many keys"), "{e}");
    let e = err(g.attention(q, k2, k2, AttentionOptions { mask: Some(m), ..none }));
    assert!(e.contains("one entry per key") && e.contains("[5]") && e.contains("[4]"), "{e}");
    let e = err(g.attention(q, k2, k2, AttentionOptions { mask: Some(mh), ..none }));
    assert!(e.contains("u32 or f32") && e.contains("f16"), "{e}");
    let e = err(g.attention_composite(q, k2, k2, AttentionOptions { keys: KeyRange::Runtime(0), ..none }));
    assert!(e.contains("KeyRange::All"), "{e}");
    let e = err(g.attention_decode(q, k2, k2, AttentionOptions { keys: KeyRange::Runtime(16), ..none }));
    assert!(e.contains("runtime slot 16"), "{e}");
    let e = err(g.attention(q, k2, k2, AttentionOptions { scale: Some(f32::NAN), ..none }));
    assert!(e.contains("finite"), "{e}");
    let e = err(g.permute(q, &[0, 0, 1]));
    assert!(e.contains("not a permutation") && e.contains("[5, 6, 64]"), "{e}");
    let e = err(g.softmax_with(q, SoftmaxOptions { mask: Some(m), ..Default::default() }));
    assert!(e.contains("softmax") && e.contains("[64]"), "{e}");
    // KV cache appends: the new rows must match the cache's heads and head size.
    let cache = KvCache::with_limits(
        &wgpu::Limits::default(),
        KvCacheConfig { layers: 1, max_ctx: 8, kv_heads: 2, head_dim: 64, slot: 0 },
    )
    .unwrap();
    let e = cache.append(&mut g, 0, k, k).unwrap_err().to_string();
    assert!(e.contains("[T, 2, 64]") && e.contains("[5, 4, 64]"), "{e}");
    let e = cache.append(&mut g, 1, k2, k2).unwrap_err().to_string();
    assert!(e.contains("layer 1") && e.contains("1 layers"), "{e}");
}

#[test]
fn cpu_executor_runs_attention_graphs() {
    // The CPU executor evaluates every new op (the graph-level oracle), including state reset.
    let c = Case { lq: 5, lk: 5, heads: 2, kv_heads: 1, d: 8, causal: true, mask: Some(true) };
    let x = data(&c, seed("cpu graph"), 1.0);
    let mut g = Graph::new();
    let (q, k, v, o) = attention_inputs(&mut g, &c, &x);
    let fused = g.attention(q, k, v, o).unwrap();
    let dec = g.attention_decode(q, k, v, o).unwrap();
    let comp = g.attention_composite(q, k, v, o).unwrap();
    let st = g.state("s", &[4, 2], DType::F32).unwrap();
    let w = g.input("w", &[1, 2], DType::F32).unwrap();
    let st2 = g.write_rows(st, w, 0).unwrap();
    for y in [fused, dec, comp, st2] {
        g.output(y).unwrap();
    }
    let mut cpu = CpuExecutor::new(&g);
    for (n, d) in host_inputs(&x) {
        cpu.set_input(n, &d).unwrap();
    }
    cpu.set_input("w", &HostData::F32(vec![1.0, 2.0])).unwrap();
    cpu.run().unwrap();
    // Against softmax(q kᵀ) v spelled out here, not the executor's own attention function.
    let keep = mask_flags(x.mask.as_ref().unwrap());
    let want = naive_attention(&c, &x, &keep, c.lk);
    for (name, y) in [("fused", fused), ("decode", dec), ("composite", comp)] {
        // f32 evaluation vs this f64 loop over 5 keys of d = 8: a few ulp of the outputs (< 1).
        assert_close(&format!("cpu executor, {name} node"), &cpu.value(y).unwrap().to_f32(), &want, 1e-5, 1e-6);
    }
    assert_eq!(cpu.value(st2).unwrap().to_f32()[..2], [1.0, 2.0]);
    cpu.clear_state("s").unwrap();
    assert!(cpu.value(st).unwrap().to_f32().iter().all(|&v| v == 0.0));
    assert!(cpu.clear_state("nope").unwrap_err().to_string().contains("no state named 'nope'"));
}

/// Keep flags of a padding mask as the op defines them: key j is hidden when its entry is zero
/// (u32 0, or f32 ±0.0).
fn mask_flags(m: &HostData) -> Vec<bool> {
    match m {
        HostData::U32(v) => v.iter().map(|&b| b != 0).collect(),
        HostData::F32(v) => v.iter().map(|&b| b != 0.0).collect(),
        other => panic!("mask of {:?}", other.dtype()),
    }
}

/// Scaled dot-product attention in f64, one (query, head) at a time, over the first `len` rows
/// of k and v (all of them, or a cache's filled rows) with the queries at the last positions
/// len - lq ..: scores q·k / sqrt(d) over the keys this query may see (causal: keys
/// 0..=len - lq + i; the mask), softmax, weighted sum of v. Query head h reads KV head
/// h / (heads / kv_heads). Written here, apart from the library's reference, so that it checks
/// that reference as well.
fn naive_attention(c: &Case, x: &Data, keep: &[bool], len: usize) -> Vec<f32> {
    let (d, group) = (c.d, c.heads / c.kv_heads);
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f32; c.lq * c.heads * d];
    for i in 0..c.lq {
        let end = if c.causal { len - c.lq + i + 1 } else { len };
        for h in 0..c.heads {
            let qrow = &x.q[(i * c.heads + h) * d..][..d];
            let kvh = h / group;
            let row = |t: &[f32], j: usize| t[(j * c.kv_heads + kvh) * d..][..d].to_vec();
            let seen: Vec<usize> = (0..end).filter(|&j| keep[j]).collect();
            let scores: Vec<f64> = seen
                .iter()
                .map(|&j| row(&x.k, j).iter().zip(qrow).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale)
                .collect();
            let top = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
            let total: f64 = w.iter().sum();
            let mut acc = vec![0f64; d];
            for (&j, wj) in seen.iter().zip(&w) {
                for (a, &vv) in acc.iter_mut().zip(&row(&x.v, j)) {
                    *a += wj / total * vv as f64;
                }
            }
            for (o, a) in out[(i * c.heads + h) * d..][..d].iter_mut().zip(acc) {
                *o = a as f32;
            }
        }
    }
    out
}
