//! Reformer attention (the `lsh` family): the CPU references against Hugging Face's layers
//! (fixtures from scripts/make_reformer_fixtures.py), every kernel against its CPU reference on
//! fresh seeded inputs of awkward sizes (outputs poisoned first), the layer fixtures through the
//! GPU graph, and the property that one bucket and one chunk make LSH attention dense attention.
//!
//! Tolerances:
//! - Against HF (f32 torch): |ours - HF| <= 1e-4 · max|HF output| per layer (the bound).
//!   Our references accumulate in f64, HF in f32: scores of these layers reach ~30, so their f32
//!   rounding (~4e-6 relative) moves outputs by ~1e-6 of their scale; measured below 2e-6.
//! - GPU vs CPU: outputs are convex combinations of value rows (|v| < 1 here), so errors are
//!   absolute: f32 dot products of d <= 128 terms and exp() (3 + 2|x| ulp under Vulkan) give
//!   ~1e-6; atol 2e-5 leaves 10x room while a wrong window, mask or round is off by 1e-2 or more.
//!   Log-sum-exp columns scale with the scores: rtol 1e-5 on them. Hash buckets are exact except
//!   where two rotated values tie to within f32 rounding (see `check_hash`).

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, block, gpu, random, seed};
use webformer::cpu::lsh::{self as cpu, Chunking, Dims};
use webformer::graph::{Buckets, ChunkOptions, LocalOptions, LshOptions};
use webformer::model::Safetensors;
use webformer::{Context, DType, GpuExecutor, Graph, HostData, NodeId};

const GPU_ATOL: f32 = 2e-5;
const HF_REL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reformer")
}

/// One fixture folder: its config and the layer tensors.
struct Fixture {
    name: String,
    config: serde_json::Value,
    layers: Vec<u8>,
    rotations: Vec<u8>,
}

impl Fixture {
    fn all() -> Vec<Fixture> {
        let mut v: Vec<Fixture> = std::fs::read_dir(fixtures())
            .expect("tests/fixtures/reformer")
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .map(|dir| Fixture {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                config: serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap(),
                layers: std::fs::read(dir.join("layers.safetensors")).unwrap(),
                rotations: std::fs::read(dir.join("rotations.safetensors")).unwrap(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(v.len() >= 3, "the Reformer fixtures are missing");
        v
    }

    fn usize(&self, key: &str) -> usize {
        self.config[key].as_u64().unwrap_or_else(|| panic!("{}: config {key}", self.name)) as usize
    }

    fn layer_kinds(&self) -> Vec<String> {
        self.config["attn_layers"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
    }

    fn buckets(&self) -> Buckets {
        let v = &self.config["num_buckets"];
        let f: Vec<usize> = match v.as_array() {
            Some(a) => a.iter().map(|x| x.as_u64().unwrap() as usize).collect(),
            None => vec![v.as_u64().unwrap() as usize],
        };
        Buckets::new(&f).unwrap()
    }

    fn tensor(bytes: &[u8], name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        let st = Safetensors::parse(bytes, name).unwrap();
        st.info(name)?;
        let t = st.tensor(name).unwrap();
        Some((t.shape, t.data.to_f32()))
    }

    fn layer(&self, i: usize, what: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        Self::tensor(&self.layers, &format!("layers.{i}.{what}"))
    }

    fn chunking(&self, kind: &str) -> Chunking {
        Chunking {
            chunk: self.usize(&format!("{kind}_attn_chunk_length")),
            before: self.usize(&format!("{kind}_num_chunks_before")),
            after: self.usize(&format!("{kind}_num_chunks_after")),
            causal: self.config["is_decoder"].as_bool().unwrap(),
        }
    }
}

/// A layer's attention as HF computed it, with the inputs it saw.
struct LayerCase {
    what: String,
    lsh: bool,
    dims: Dims,
    /// qk (LSH) or q, k, and v: [H, L, d] each.
    inputs: Vec<Vec<f32>>,
    rotations: Option<(Vec<usize>, Vec<f32>)>,
    keep: Option<Vec<bool>>,
    mask: Option<Vec<f32>>,
    chunking: Chunking,
    rounds: usize,
    buckets: Buckets,
    /// [L, H·d], HF's output.
    want: Vec<f32>,
}

fn layer_cases() -> Vec<LayerCase> {
    let mut cases = Vec::new();
    for f in Fixture::all() {
        for (i, kind) in f.layer_kinds().iter().enumerate() {
            let lsh = kind == "lsh";
            let names: &[&str] = if lsh { &["qk", "value"] } else { &["query", "key", "value"] };
            let (shape, _) = f.layer(i, "value").unwrap();
            let inputs = names.iter().map(|n| f.layer(i, n).unwrap().1).collect();
            let mask = f.layer(i, "attention_mask").map(|m| m.1);
            let rotations = Fixture::tensor(&f.rotations, &format!("layers.{i}.rotations"));
            cases.push(LayerCase {
                what: format!("{} layer {i} ({kind})", f.name),
                lsh,
                dims: Dims { b: shape[0], l: shape[1], d: shape[2] },
                inputs,
                keep: mask.as_ref().map(|m| m.iter().map(|&x| x != 0.0).collect()),
                mask,
                rounds: rotations.as_ref().map_or(1, |r| r.0[2]),
                rotations,
                chunking: f.chunking(kind),
                buckets: f.buckets(),
                want: f.layer(i, "output").unwrap().1,
            });
        }
    }
    cases
}

/// [H, L, d] -> [L, H·d] (HF's merged heads).
fn merge_heads(x: &[f32], dims: Dims) -> Vec<f32> {
    let Dims { b, l, d } = dims;
    let mut out = vec![0f32; x.len()];
    for h in 0..b {
        for t in 0..l {
            out[(t * b + h) * d..][..d].copy_from_slice(&x[(h * l + t) * d..][..d]);
        }
    }
    out
}

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

fn check_hf(what: &str, got: &[f32], want: &[f32]) {
    let tol = HF_REL * max_abs(want);
    let err = got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    eprintln!("{what}: max error {err:.3e} (bound {tol:.3e})");
    assert_close(what, got, want, 0.0, tol);
}

impl LayerCase {
    fn cpu(&self) -> Vec<f32> {
        let x = &self.inputs;
        let keep = self.keep.as_deref();
        let out = if self.lsh {
            let rot = self.rotations.as_ref().map(|r| r.1.as_slice()).unwrap_or(&[]);
            cpu::lsh_attention(&x[0], &x[1], rot, self.dims, self.rounds, &self.buckets, &self.chunking, keep)
        } else {
            let mut ch = self.chunking;
            if self.dims.l <= ch.chunk {
                ch = Chunking { chunk: self.dims.l, before: 0, after: 0, causal: ch.causal };
            }
            cpu::local_attention(&x[0], &x[1], &x[2], self.dims, &ch, keep)
        };
        merge_heads(&out, self.dims)
    }
}

#[test]
fn cpu_references_match_hugging_face_layers() {
    let cases = layer_cases();
    assert!(cases.iter().any(|c| c.lsh && c.rounds == 4) && cases.iter().any(|c| !c.lsh));
    for c in &cases {
        check_hf(&format!("CPU {}", c.what), &c.cpu(), &c.want);
    }
}

// ---------------------------------------------------------------------------------------
// GPU kernels against the CPU references

/// Runs `g` on the GPU with `inputs`, outputs poisoned first; returns the value of `y`.
fn run_gpu(ctx: &Context, g: &Graph, y: NodeId, inputs: &[(&str, HostData)]) -> HostData {
    let mut exe = GpuExecutor::new(ctx, g).expect("executor");
    exe.poison_outputs();
    for (name, data) in inputs {
        exe.set_input_host(name, data).expect("input");
    }
    exe.run().expect("run");
    block(exe.read(y)).expect("read")
}

/// A padding mask over `l` tokens, about a quarter hidden, as f32 or u32.
fn random_mask(seed: u64, l: usize, as_f32: bool) -> (HostData, Vec<bool>) {
    let keep: Vec<bool> = random(seed, l, 0.0, 1.0).iter().map(|&x| x > 0.25).collect();
    let data = if as_f32 {
        HostData::F32(keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect())
    } else {
        HostData::U32(keep.iter().map(|&k| k as u32 * 7).collect())
    };
    (data, keep)
}

/// Hash kernel vs reference. Buckets are exact unless two candidates of an argmax are within
/// f32 rounding of each other (the reference decides in f64): those elements are allowed to
/// differ, and must be rare.
fn check_hash(ctx: &Context, b: usize, l: usize, d: usize, rounds: usize, factors: &[usize], masked: bool) {
    let s = seed("lsh_hash");
    let buckets = Buckets::new(factors).unwrap();
    let half = buckets.rotation_half();
    let qk = random(s, b * l * d, -1.0, 1.0);
    let rot = random(s + 1, b * d * rounds * half, -1.0, 1.0);
    let (mask, keep) = random_mask(s + 2, l, s.is_multiple_of(2));
    let mut g = Graph::new();
    let x = g.input("qk", &[b, l, d], DType::F32).unwrap();
    let r = g.input("rot", &[b, d, rounds, half], DType::F32).unwrap();
    let m = masked.then(|| g.input("mask", &[l], mask.dtype()).unwrap());
    let y = g.lsh_hash(x, r, buckets, m).unwrap();
    g.output(y).unwrap();
    let mut inputs = vec![("qk", HostData::F32(qk.clone())), ("rot", HostData::F32(rot.clone()))];
    if masked {
        inputs.push(("mask", mask));
    }
    let HostData::U32(got) = run_gpu(ctx, &g, y, &inputs) else { panic!("u32 buckets") };
    let want = cpu::hash(&qk, &rot, Dims { b, l, d }, rounds, &buckets, masked.then_some(&keep[..]));
    let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert!(
        differ * 200 <= want.len(),
        "hash b={b} l={l} d={d} rounds={rounds} {factors:?}: {differ} of {} buckets differ",
        want.len()
    );
    let stride = buckets.count() + masked as u32;
    assert!(got.iter().enumerate().all(|(i, &v)| v / stride == ((i / l) % rounds) as u32), "round offsets");
}

#[test]
fn hash_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    check_hash(&ctx, 1, 1, 4, 1, &[2], false);
    check_hash(&ctx, 3, 67, 12, 2, &[8], true);
    check_hash(&ctx, 2, 131, 16, 4, &[2, 4], false);
    check_hash(&ctx, 1, 65, 32, 3, &[4, 6, 2], true);
    // Head size 128 (the most a row holds in registers), several token tiles per (row, round).
    check_hash(&ctx, 2, 200, 128, 2, &[16], false);
}

/// A random permutation of 0..n per row.
fn random_perm(seed: u64, b: usize, n: usize) -> Vec<u32> {
    let keys: Vec<u32> = random(seed, b * n, 0.0, 1e6).iter().map(|&x| x as u32).collect();
    cpu::argsort_rows(&keys, b).0
}

#[allow(clippy::too_many_arguments)]
fn check_chunk(ctx: &Context, b: usize, l: usize, d: usize, rounds: usize, ch: Chunking, masked: bool, as_f32: bool) {
    let s = seed("lsh_chunk_attention");
    let n = rounds * l;
    let qk = random(s, b * l * d, -1.0, 1.0);
    let v = random(s + 1, b * l * d, -1.0, 1.0);
    let perm = random_perm(s + 2, b, n);
    let (mask, keep) = random_mask(s + 3, l, as_f32);
    let mut g = Graph::new();
    let x = g.input("qk", &[b, l, d], DType::F32).unwrap();
    let vv = g.input("v", &[b, l, d], DType::F32).unwrap();
    let p = g.input("perm", &[b, n], DType::U32).unwrap();
    let m = masked.then(|| g.input("mask", &[l], mask.dtype()).unwrap());
    let o = ChunkOptions { chunk: ch.chunk, before: ch.before, after: ch.after, causal: ch.causal, mask: m };
    let y = g.lsh_chunk_attention(x, vv, p, o).unwrap();
    g.output(y).unwrap();
    let mut inputs =
        vec![("qk", HostData::F32(qk.clone())), ("v", HostData::F32(v.clone())), ("perm", HostData::U32(perm.clone()))];
    if masked {
        inputs.push(("mask", mask));
    }
    let got = run_gpu(ctx, &g, y, &inputs).to_f32();
    let want = cpu::chunk_attention(&qk, &v, &perm, Dims { b, l, d }, &ch, masked.then_some(&keep[..]));
    let what = format!("chunk attention b={b} l={l} d={d} rounds={rounds} {ch:?} mask={masked}");
    let split = |x: &[f32]| -> (Vec<f32>, Vec<f32>) {
        let (mut o, mut lse) = (Vec::new(), Vec::new());
        for row in x.chunks(d + 1) {
            o.extend_from_slice(&row[..d]);
            lse.push(row[d]);
        }
        (o, lse)
    };
    let ((go, gl), (wo, wl)) = (split(&got), split(&want));
    assert_close(&format!("{what}: outputs"), &go, &wo, 0.0, GPU_ATOL);
    assert_close(&format!("{what}: log-sum-exp"), &gl, &wl, 1e-5, GPU_ATOL);
}

#[test]
fn chunk_attention_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let ch = |chunk, before, after, causal| Chunking { chunk, before, after, causal };
    check_chunk(&ctx, 1, 1, 4, 1, ch(1, 0, 0, false), false, false);
    check_chunk(&ctx, 2, 12, 8, 2, ch(4, 1, 0, true), true, false);
    // two chunks seen before and after: the other chunk twice, as HF's look-adjacent does
    check_chunk(&ctx, 3, 10, 16, 1, ch(5, 1, 1, false), true, true);
    check_chunk(&ctx, 2, 33, 12, 4, ch(11, 2, 1, true), false, false);
    check_chunk(&ctx, 1, 65, 128, 1, ch(13, 1, 0, false), true, false);
}

fn check_combine(ctx: &Context, b: usize, l: usize, d: usize, rounds: usize) {
    let s = seed("lsh_combine");
    let n = rounds * l;
    let mut att = random(s, b * n * (d + 1), -1.0, 1.0);
    // log-sum-exps spread over a wide range, some rounds dominating
    for (i, x) in att.iter_mut().enumerate() {
        if i % (d + 1) == d {
            *x *= 30.0;
        }
    }
    let undo = random_perm(s + 1, b, n);
    let mut g = Graph::new();
    let a = g.input("att", &[b, n, d + 1], DType::F32).unwrap();
    let u = g.input("undo", &[b, n], DType::U32).unwrap();
    let y = g.lsh_combine(a, u, rounds).unwrap();
    g.output(y).unwrap();
    let got =
        run_gpu(ctx, &g, y, &[("att", HostData::F32(att.clone())), ("undo", HostData::U32(undo.clone()))]).to_f32();
    let want = cpu::combine(&att, &undo, b, rounds, d);
    assert_close(&format!("combine b={b} l={l} d={d} rounds={rounds}"), &got, &want, 0.0, GPU_ATOL);
}

#[test]
fn combine_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    check_combine(&ctx, 1, 1, 4, 1);
    check_combine(&ctx, 3, 67, 8, 2);
    check_combine(&ctx, 2, 65, 20, 4);
    check_combine(&ctx, 1, 13, 4, 16);
}

fn check_local(ctx: &Context, b: usize, l: usize, d: usize, ch: Chunking, masked: bool) {
    let s = seed("local_attention");
    let (q, k, v) =
        (random(s, b * l * d, -1.0, 1.0), random(s + 1, b * l * d, -1.0, 1.0), random(s + 2, b * l * d, -1.0, 1.0));
    let (mask, keep) = random_mask(s + 3, l, s % 2 == 1);
    let mut g = Graph::new();
    let ids: Vec<NodeId> = ["q", "k", "v"].iter().map(|n| g.input(n, &[b, l, d], DType::F32).unwrap()).collect();
    let m = masked.then(|| g.input("mask", &[l], mask.dtype()).unwrap());
    let o = LocalOptions { chunk: ch.chunk, before: ch.before, after: ch.after, causal: ch.causal, mask: m };
    let y = g.local_attention(ids[0], ids[1], ids[2], o).unwrap();
    g.output(y).unwrap();
    let mut inputs =
        vec![("q", HostData::F32(q.clone())), ("k", HostData::F32(k.clone())), ("v", HostData::F32(v.clone()))];
    if masked {
        inputs.push(("mask", mask));
    }
    let got = run_gpu(ctx, &g, y, &inputs).to_f32();
    let eff = if l <= ch.chunk { Chunking { chunk: l, before: 0, after: 0, causal: ch.causal } } else { ch };
    let want = cpu::local_attention(&q, &k, &v, Dims { b, l, d }, &eff, masked.then_some(&keep[..]));
    assert_close(&format!("local b={b} l={l} d={d} {ch:?} mask={masked}"), &got, &want, 0.0, GPU_ATOL);
}

#[test]
fn local_attention_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let ch = |chunk, before, after, causal| Chunking { chunk, before, after, causal };
    check_local(&ctx, 1, 1, 4, ch(4, 1, 0, true), false);
    check_local(&ctx, 2, 7, 8, ch(16, 1, 1, false), true); // one chunk: HF's plain path
    check_local(&ctx, 3, 65, 12, ch(13, 1, 0, true), true);
    check_local(&ctx, 2, 36, 16, ch(9, 1, 1, false), false);
    check_local(&ctx, 1, 20, 128, ch(4, 2, 1, false), true);
}

// ---------------------------------------------------------------------------------------
// Whole layers on the GPU

#[test]
fn hugging_face_layers_through_the_gpu_graph() {
    let Some(ctx) = gpu() else { return };
    for c in layer_cases() {
        let Dims { b, l, d } = c.dims;
        let mut g = Graph::new();
        let names: &[&str] = if c.lsh { &["qk", "v"] } else { &["q", "k", "v"] };
        let xs: Vec<NodeId> = names.iter().map(|n| g.input(n, &[b, l, d], DType::F32).unwrap()).collect();
        let mask = c.mask.as_ref().map(|_| g.input("mask", &[l], DType::F32).unwrap());
        let mut inputs: Vec<(&str, HostData)> =
            names.iter().zip(&c.inputs).map(|(n, x)| (*n, HostData::F32(x.clone()))).collect();
        let y = if c.lsh {
            let ch = c.chunking;
            let o = LshOptions {
                buckets: c.buckets,
                rounds: c.rounds,
                chunk: ch.chunk,
                before: ch.before,
                after: ch.after,
                causal: ch.causal,
                mask,
            };
            match &c.rotations {
                Some((shape, rot)) => {
                    let r = g.input("rot", shape, DType::F32).unwrap();
                    inputs.push(("rot", HostData::F32(rot.clone())));
                    g.lsh_attention(xs[0], xs[1], r, o).unwrap()
                }
                None => g.lsh_plain_attention(xs[0], xs[1], ch.causal, mask).unwrap(),
            }
        } else {
            let ch = c.chunking;
            let o = LocalOptions { chunk: ch.chunk, before: ch.before, after: ch.after, causal: ch.causal, mask };
            g.local_attention(xs[0], xs[1], xs[2], o).unwrap()
        };
        g.output(y).unwrap();
        if let Some(m) = &c.mask {
            inputs.push(("mask", HostData::F32(m.clone())));
        }
        let got = run_gpu(&ctx, &g, y, &inputs).to_f32();
        check_hf(&format!("GPU {}", c.what), &merge_heads(&got, c.dims), &c.want);
    }
}

/// Dense shared-QK attention with the LSH masks, written independently of the chunked code:
/// softmax over all keys of q·k/|k|-normalised scores, padding and causal masked to -1e9, self
/// to -1e5 (a row that sees only itself takes its own value).
fn dense_shared_qk(qk: &[f32], v: &[f32], dims: Dims, causal: bool, keep: &[bool]) -> Vec<f32> {
    let Dims { b, l, d } = dims;
    let row = |h: usize, t: usize| &qk[(h * l + t) * d..][..d];
    let mut out = vec![0f32; b * l * d];
    for h in 0..b {
        for i in 0..l {
            let s: Vec<f64> = (0..l)
                .map(|j| {
                    let k = row(h, j);
                    let norm = (k.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / d as f64 + 1e-6).sqrt();
                    let dot: f64 = row(h, i).iter().zip(k).map(|(&a, &c)| a as f64 * c as f64).sum();
                    if i == j {
                        -1e5
                    } else if !keep[j] || (causal && j > i) {
                        -1e9
                    } else {
                        dot / norm / (d as f64).sqrt()
                    }
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            for (j, sj) in s.iter().enumerate() {
                let w = (sj - m).exp() / z;
                for k in 0..d {
                    out[(h * l + i) * d + k] += (w * v[(h * l + j) * d + k] as f64) as f32;
                }
            }
        }
    }
    out
}

/// All keys in one bucket (zero rotations: every argmax is column 0) and one chunk covering
/// each round's sequence: LSH attention is then dense attention with the same masks, in every
/// round, so the combination of rounds changes nothing.
#[test]
fn one_bucket_one_chunk_is_dense_attention() {
    let Some(ctx) = gpu() else { return };
    for (b, l, d, rounds, causal) in [(2, 17, 8, 1, true), (3, 40, 16, 2, false), (1, 9, 4, 4, true)] {
        let s = seed("lsh property");
        let qk = random(s, b * l * d, -1.0, 1.0);
        let v = random(s + 1, b * l * d, -1.0, 1.0);
        let (mask, keep) = random_mask(s + 2, l, false);
        let buckets = Buckets::new(&[4]).unwrap();
        let mut g = Graph::new();
        let x = g.input("qk", &[b, l, d], DType::F32).unwrap();
        let vv = g.input("v", &[b, l, d], DType::F32).unwrap();
        let r = g.input("rot", &[b, d, rounds, 2], DType::F32).unwrap();
        let m = g.input("mask", &[l], DType::U32).unwrap();
        // one chunk of L per round, L a multiple of the chunk (but more than one chunk in all,
        // so hashing and sorting run when rounds > 1; with one round, HF's plain path)
        let o = LshOptions { buckets, rounds, chunk: l, before: 0, after: 0, causal, mask: Some(m) };
        let y = if rounds == 1 {
            g.lsh_plain_attention(x, vv, causal, Some(m)).unwrap()
        } else {
            g.lsh_attention(x, vv, r, o).unwrap()
        };
        g.output(y).unwrap();
        let inputs = [
            ("qk", HostData::F32(qk.clone())),
            ("v", HostData::F32(v.clone())),
            ("rot", HostData::F32(vec![0.0; b * d * rounds * 2])),
            ("mask", mask),
        ];
        let inputs: Vec<(&str, HostData)> =
            inputs.into_iter().filter(|(n, _)| g.inputs().any(|(m, _)| m == *n)).collect();
        let got = run_gpu(&ctx, &g, y, &inputs).to_f32();
        let want = dense_shared_qk(&qk, &v, Dims { b, l, d }, causal, &keep);
        assert_close(
            &format!("one bucket b={b} l={l} d={d} rounds={rounds} causal={causal}"),
            &got,
            &want,
            0.0,
            GPU_ATOL,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The cached decoding step (family `lsh_decode`) against its CPU reference (webformer::cpu::
// lsh_decode, which follows HF's cached path literally: argsort, window mod L, gather with
// repeats). Tolerances as above: outputs are convex combinations of value rows in [-1, 1]
// (rounds combined by weights summing to 1), so f32 dot products and exp() give ~1e-6
// absolute; GPU_ATOL (2e-5) leaves 10x room while one wrong window member moves an output by
// ~1e-2. Buckets from the decode hash are exact but for f32 near-ties (as `check_hash`).

use webformer::cpu::lsh_decode as dcpu;
use webformer::graph::{DecodeHash, DecodeLocal, DecodeOptions};

/// A bucket cache [rows, H·R] as HF's would be: round-r values bucket + r·stride, stride
/// count + 1 for the first `padded_rows` positions (a padded, hashed prompt) and count after.
fn bucket_cache(seed: u64, rows: usize, hr: usize, rounds: usize, count: u32, padded_rows: usize) -> Vec<f32> {
    let u = random(seed, rows * hr, 0.0, count as f32);
    (0..rows * hr)
        .map(|i| {
            let (row, r) = (i / hr, (i % hr) % rounds);
            let stride = count + (row < padded_rows) as u32;
            (u[i] as u32).min(count - 1) as f32 + (r as u32 * stride) as f32
        })
        .collect()
}

struct StepCase {
    heads: usize,
    rounds: usize,
    d: usize,
    rows: usize,
    n: usize,
    count: u32,
    chunk: usize,
    before: usize,
    after: usize,
    dense_until: usize,
    padded_rows: usize,
}

fn check_attend_step(ctx: &Context, c: &StepCase) {
    let s = seed("lsh_decode_attend");
    let (hd, hr) = (c.heads * c.d, c.heads * c.rounds);
    let qk = random(s, c.rows * hd, -1.0, 1.0);
    let v = random(s + 1, c.rows * hd, -1.0, 1.0);
    let buckets = bucket_cache(s + 2, c.rows, hr, c.rounds, c.count, c.padded_rows);
    let mut g = Graph::new();
    let x = g.input("qk", &[c.rows, hd], DType::F32).unwrap();
    let y = g.input("v", &[c.rows, hd], DType::F32).unwrap();
    let b = g.input("buckets", &[c.rows, hr], DType::F32).unwrap();
    let o = DecodeOptions {
        heads: c.heads,
        rounds: c.rounds,
        buckets: Buckets::new(&[c.count as usize]).unwrap(),
        chunk: c.chunk,
        before: c.before,
        after: c.after,
        dense_until: c.dense_until,
        slot: 0,
    };
    let out = g.lsh_decode_attend(x, y, b, o).unwrap();
    g.output(out).unwrap();
    let mut exe = GpuExecutor::new(ctx, &g).expect("executor");
    exe.poison_outputs();
    exe.set_input("qk", &qk).unwrap();
    exe.set_input("v", &v).unwrap();
    exe.set_input("buckets", &buckets).unwrap();
    exe.set_runtime_u32(0, c.n as u32).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(out)).unwrap().to_f32();
    let Some(webformer::Op::LshDecode(webformer::graph::LshDecodeOp::Attend(p))) = g.node(out).op().copied() else {
        panic!("an attend node")
    };
    let want = dcpu::attend_step(&qk, &v, &buckets, &p, c.n);
    let what = format!(
        "lsh_decode_attend H={} R={} d={} n={} nb={} chunk={}x(1+{}+{}) dense_until={} (seed {s})",
        c.heads, c.rounds, c.d, c.n, c.count, c.chunk, c.before, c.after, c.dense_until
    );
    assert_close(&what, &got, &want, 0.0, GPU_ATOL);
}

#[test]
fn decode_attend_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let case = |heads, rounds, d, rows, n, count, chunk, before, after| StepCase {
        heads,
        rounds,
        d,
        rows,
        n,
        count,
        chunk,
        before,
        after,
        dense_until: 0,
        padded_rows: 0,
    };
    // One position (the window is copies of the query itself, all self-masked).
    check_attend_step(&ctx, &case(1, 1, 4, 1, 0, 2, 4, 1, 0));
    // A prime count of positions, window 8 < L: wraps when the query sorts into the first chunk.
    check_attend_step(&ctx, &case(2, 2, 8, 16, 12, 4, 4, 1, 0));
    // Window 12 > L = 5: every position at least twice.
    check_attend_step(&ctx, &case(2, 3, 8, 9, 4, 4, 4, 2, 0));
    // Chunks after as well, several tiles of positions (L = 301 > the workgroup), 64 buckets.
    check_attend_step(&ctx, &case(3, 3, 16, 320, 300, 64, 16, 1, 1));
    // Head size 128, 4 rounds, a window of 1024 (the most), L = 1031 (prime).
    check_attend_step(&ctx, &case(2, 4, 128, 1100, 1030, 8, 256, 3, 0));
    // A padded prompt's buckets (stride count + 1 for the first 7 rows).
    check_attend_step(&ctx, &StepCase { padded_rows: 7, ..case(2, 3, 8, 24, 19, 4, 4, 1, 0) });
    // Dense steps (no buckets cached yet): all L positions once, round 0 only.
    check_attend_step(&ctx, &StepCase { dense_until: 8, ..case(2, 2, 8, 10, 6, 4, 8, 1, 0) });
    check_attend_step(&ctx, &StepCase { dense_until: 8, ..case(2, 2, 8, 10, 7, 4, 8, 1, 0) });
}

fn check_decode_hash(
    ctx: &Context,
    heads: usize,
    rows: usize,
    d: usize,
    rounds: usize,
    factors: &[usize],
    auto: Option<usize>,
) {
    let s = seed("lsh_decode_hash");
    let buckets = Buckets::new(factors).unwrap();
    let (half, count, hr) = (buckets.rotation_half(), buckets.count(), heads * rounds);
    let qk = random(s, rows * heads * d, -1.0, 1.0);
    let rot = random(s + 1, heads * d * rounds * half, -1.0, 1.0);
    let mut g = Graph::new();
    let x = g.input("qk", &[rows, heads * d], DType::F32).unwrap();
    let r = g.input("rot", &[heads, d, rounds, half], DType::F32).unwrap();
    let mut inputs = vec![("qk", HostData::F32(qk.clone())), ("rot", HostData::F32(rot.clone()))];
    // auto = Some(padded rows): one new row at position n = 9 over a cache whose first rows
    // carry the padding stride (or none).
    let (n, cache_rows) = (9, 12);
    let cache = auto.map(|padded| bucket_cache(s + 2, cache_rows, hr, rounds, count, padded));
    let c = cache.as_ref().map(|_| g.input("cache", &[cache_rows, hr], DType::F32).unwrap());
    if let Some(data) = &cache {
        inputs.push(("cache", HostData::F32(data.clone())));
    }
    let stride = match auto {
        None => Some(count + 1),
        Some(_) => None,
    };
    let p = DecodeHash { heads: heads as u32, rounds: rounds as u32, buckets, stride, slot: 0 };
    let y = g.lsh_decode_hash(x, r, c, p).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(ctx, &g).expect("executor");
    exe.poison_outputs();
    for (name, data) in &inputs {
        exe.set_input_host(name, data).unwrap();
    }
    exe.set_runtime_u32(0, n as u32).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    let want = dcpu::hash(&qk, &rot, cache.as_deref(), &p, n);
    let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    let what = format!("lsh_decode_hash H={heads} rows={rows} d={d} R={rounds} {factors:?} auto={auto:?} (seed {s})");
    assert!(differ * 200 <= want.len().max(200), "{what}: {differ} of {} buckets differ", want.len());
    // The round offsets are exact whatever the near-ties: HF's stride choice.
    let stride = stride.unwrap_or(
        count
            + auto.is_some_and(|padded| {
                padded > 0 && rounds > 1 && {
                    let c = cache.as_ref().unwrap();
                    c[..n * hr].iter().any(|&b| b > (rounds as u32 * count) as f32 - 1.0)
                }
            }) as u32,
    );
    for (i, &b) in got.iter().enumerate() {
        let r = (i % hr % rounds) as u32;
        assert!(
            b >= (r * stride) as f32 && b < (r * stride + count) as f32,
            "{what}: element {i} = {b}, stride {stride}"
        );
    }
}

#[test]
fn decode_hash_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    // A prompt's rows with a fixed stride: 1 row, a prime count, over a workgroup of (row, head, round).
    check_decode_hash(&ctx, 1, 1, 4, 1, &[2], None);
    check_decode_hash(&ctx, 3, 67, 12, 2, &[8], None);
    check_decode_hash(&ctx, 2, 131, 16, 4, &[2, 4], None);
    // One step with HF's stride choice: no padded rows cached, then some.
    check_decode_hash(&ctx, 2, 1, 8, 3, &[4], Some(0));
    check_decode_hash(&ctx, 2, 1, 8, 3, &[4], Some(5));
    check_decode_hash(&ctx, 4, 1, 128, 2, &[4, 6, 2], Some(9));
}

fn check_local_step(ctx: &Context, heads: usize, d: usize, rows: usize, n: usize, chunk: u32, before: u32) {
    let s = seed("local_decode");
    let hd = heads * d;
    let q = random(s, hd, -1.0, 1.0);
    let k = random(s + 1, rows * hd, -1.0, 1.0);
    let v = random(s + 2, rows * hd, -1.0, 1.0);
    let mut g = Graph::new();
    let qi = g.input("q", &[1, hd], DType::F32).unwrap();
    let ki = g.input("k", &[rows, hd], DType::F32).unwrap();
    let vi = g.input("v", &[rows, hd], DType::F32).unwrap();
    let p = DecodeLocal { heads: heads as u32, chunk, before, slot: 0 };
    let y = g.local_decode(qi, ki, vi, p).unwrap();
    g.output(y).unwrap();
    let inputs = [("q", HostData::F32(q.clone())), ("k", HostData::F32(k.clone())), ("v", HostData::F32(v.clone()))];
    let mut exe = GpuExecutor::new(ctx, &g).expect("executor");
    exe.poison_outputs();
    for (name, data) in &inputs {
        exe.set_input_host(name, data).unwrap();
    }
    exe.set_runtime_u32(0, n as u32).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    let want = dcpu::local_step(&q, &k, &v, &p, n);
    let what = format!("local_decode H={heads} d={d} n={n} chunk={chunk} before={before} (seed {s})");
    assert_close(&what, &got, &want, 0.0, GPU_ATOL);
}

#[test]
fn decode_local_kernel_matches_reference() {
    let Some(ctx) = gpu() else { return };
    check_local_step(&ctx, 1, 4, 1, 0, 4, 1);
    check_local_step(&ctx, 2, 8, 16, 5, 4, 1);
    check_local_step(&ctx, 2, 8, 16, 13, 4, 0);
    // A negative slice start that counts from the end: n = 12, chunk 8, two before -> the
    // last 8 cached positions.
    check_local_step(&ctx, 3, 16, 20, 12, 8, 2);
    // A window over the workgroup: chunk 200, one before, n = 457.
    check_local_step(&ctx, 2, 128, 500, 457, 200, 1);
}
