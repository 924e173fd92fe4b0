//! State writes (`write_rows`, the KV cache's appends) touch exactly their target rows.
//!
//! States start as zeros, and a write of zeros or into zeros hides a write that lands in the
//! wrong rows. So every state here is first filled with sentinels, distinct per element, by a
//! second executor sharing the state (`SharedBuffers`); then the write under test runs, and the
//! whole state is read back: the target rows must hold the new values and every other row its
//! sentinel, bit for bit.

mod common;

use common::{block, gpu, random, require_feature, seed};
use webformer::{Context, DType, GpuExecutor, Graph, KvCache, KvCacheConfig, Plan, Scalar, SharedBuffers};

/// Sentinel for element i: -(1 + i mod 1000) - 0.5, exact in f16 and f32 and far from the
/// inputs (in [-1, 1)), distinct within any 1000 consecutive elements.
fn sentinels(n: usize) -> Vec<f32> {
    (0..n).map(|i| -((i % 1000) as f32) - 1.5).collect()
}

/// An executor that overwrites the whole state `name` [rows, cols] with sentinels, built in
/// `shared` so that later executors of graphs with a state of that name see the same buffer.
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

/// Checks a state read back after writing `src` ([t, cols]) at row `at` over sentinels.
fn check_rows(what: &str, got: &[f32], src: &[f32], at: usize, cols: usize, f16: bool) {
    let fill = sentinels(got.len());
    let t = src.len() / cols;
    for (i, &v) in got.iter().enumerate() {
        let row = i / cols;
        let want = if (at..at + t).contains(&row) {
            let s = src[(row - at) * cols + i % cols];
            if f16 {
                half::f16::from_f32(s).to_f32()
            } else {
                s
            }
        } else {
            fill[i]
        };
        assert!(
            v.to_bits() == want.to_bits(),
            "{what}: row {row} column {} is {v}, expected {want} ({})",
            i % cols,
            if (at..at + t).contains(&row) { "written" } else { "untouched sentinel" }
        );
    }
}

#[test]
fn write_rows_touches_only_its_rows() {
    let Some(ctx) = gpu() else { return };
    let s = seed("write_rows over sentinels");
    let f16 = require_feature(&ctx, wgpu::Features::SHADER_F16, "shader-f16");
    let dtypes: &[DType] = if f16 { &[DType::F32, DType::F16] } else { &[DType::F32] };
    // (state rows, columns, rows written): one row, a prime width, a block just over 64.
    for (k, &(rows, cols, t)) in [(9, 1, 1), (17, 7, 3), (40, 67, 5), (70, 3, 65)].iter().enumerate() {
        for &dtype in dtypes {
            let mut shared = SharedBuffers::new();
            let mut fill = filler(&ctx, &mut shared, "s", rows, cols, dtype);
            let mut g = Graph::new();
            let st = g.state("s", &[rows, cols], dtype).unwrap();
            let x = g.input("x", &[t, cols], DType::F32).unwrap();
            let w = g.write_rows(st, x, 3).unwrap();
            g.output(w).unwrap();
            let mut exe = GpuExecutor::with_shared(&ctx, &g, &Plan::new(&g), &mut shared).unwrap();
            // First row, last possible row, and one in between.
            for at in [0, rows - t, (rows - t) / 2] {
                fill.run().unwrap();
                let src = random(s + k as u64 + at as u64, t * cols, -1.0, 1.0);
                exe.set_input("x", &src).unwrap();
                exe.set_runtime_u32(3, at as u32).unwrap();
                exe.run().unwrap();
                let got = block(exe.read(w)).unwrap().to_f32();
                let what = format!("write_rows {t} rows into [{rows}, {cols}] {dtype} at row {at}");
                check_rows(&what, &got, &src, at, cols, dtype == DType::F16);
            }
        }
    }
}

#[test]
fn kv_cache_appends_touch_only_the_new_positions() {
    let Some(ctx) = gpu() else { return };
    let s = seed("kv cache over sentinels");
    let (layers, max_ctx, kv_heads, head_dim) = (2, 37, 2, 5);
    let width = kv_heads * head_dim;
    let f16 = require_feature(&ctx, wgpu::Features::SHADER_F16, "shader-f16");
    let dtypes: &[DType] = if f16 { &[DType::F32, DType::F16] } else { &[DType::F32] };
    for &dtype in dtypes {
        for t in [1, 4] {
            let config = KvCacheConfig { layers, max_ctx, kv_heads, head_dim, slot: 1 };
            let mut cache = KvCache::new(&ctx, config).unwrap().with_dtype(dtype).unwrap();
            let mut shared = SharedBuffers::new();
            let mut fills = Vec::new();
            for layer in 0..layers {
                let (kn, vn) = cache.state_names(layer);
                fills.push(filler(&ctx, &mut shared, &kn, max_ctx, width, dtype));
                fills.push(filler(&ctx, &mut shared, &vn, max_ctx, width, dtype));
            }
            // Both layers append; layer 1 gets the negated keys and values (so a write into the
            // other layer's state shows).
            let mut g = Graph::new();
            let k = g.input("k", &[t, kv_heads, head_dim], DType::F32).unwrap();
            let v = g.input("v", &[t, kv_heads, head_dim], DType::F32).unwrap();
            let mut outs = Vec::new();
            for layer in 0..layers {
                let (kl, vl) = if layer == 0 {
                    (k, v)
                } else {
                    (g.scale(k, Scalar::Const(-1.0)).unwrap(), g.scale(v, Scalar::Const(-1.0)).unwrap())
                };
                let (ks, vs) = cache.append(&mut g, layer, kl, vl).unwrap();
                g.output(ks).unwrap();
                g.output(vs).unwrap();
                outs.push((ks, vs));
            }
            let mut exe = GpuExecutor::with_shared(&ctx, &g, &Plan::new(&g), &mut shared).unwrap();
            for f in fills.iter_mut() {
                f.run().unwrap();
            }
            // Steps of t positions from 0 until the cache is full: after each, the rows below
            // the length hold every value appended so far and the rows above it their sentinels.
            let mut written: Vec<f32> = Vec::new();
            while cache.remaining() >= t {
                let at = cache.len();
                let kx = random(s + at as u64, t * width, -1.0, 1.0);
                let vx = random(s + 1000 + at as u64, t * width, -1.0, 1.0);
                exe.set_input("k", &kx).unwrap();
                exe.set_input("v", &vx).unwrap();
                cache.step(&mut exe, t).unwrap();
                written.extend(kx.iter().zip(&vx).flat_map(|(&a, &b)| [a, b]));
                // Check at the first two steps, the last, and every fifth.
                let steps = cache.len() / t;
                if steps > 2 && !steps.is_multiple_of(5) && cache.remaining() >= t {
                    continue;
                }
                for (layer, &(ks, vs)) in outs.iter().enumerate() {
                    let sign = if layer == 0 { 1.0 } else { -1.0 };
                    for (name, id, which) in [("K", ks, 0), ("V", vs, 1)] {
                        let src: Vec<f32> = written.iter().skip(which).step_by(2).map(|x| sign * x).collect();
                        let got = block(exe.read(id)).unwrap().to_f32();
                        assert_eq!(got.len(), max_ctx * width);
                        let what = format!("{dtype} cache layer {layer} {name}: after {t} positions appended at {at}");
                        check_rows(&what, &got, &src, 0, width, dtype == DType::F16);
                    }
                }
            }
        }
    }
}
