//! Every kernel against its CPU reference: fresh seeded random inputs, awkward sizes (1, odd,
//! prime, smaller than a workgroup, more than 65535 workgroups), outputs poisoned with NaN
//! before the run so an element the kernel forgets to write fails.
//!
//! Tolerances (f32):
//! - add, mul, scale, relu: exact IEEE operations, compared with rtol 1e-6.
//! - gelu (erf): erf by A&S 7.1.26 (abs error 1.5e-7) vs libm's erf: rtol 1e-5, atol 1e-6.
//! - gelu (tanh), silu: the backend's exp/tanh vs f64: rtol 1e-5, atol 1e-6.
//! - matmul: per element |got - want| <= 2·k·eps·Σ|a||b| (the classic dot-product error bound).

mod common;

use common::harness::{check, given, uniform, OpTest, Tol};
use common::{assert_close, block, gpu, random, seed};
use webformer::{cpu, numel, Activation, Context, DType, GpuExecutor, Graph, HostData, NodeId, Scalar};

/// More elements than 65535 workgroups of 256 can cover: forces the wrapped 2-D grid.
const HUGE: usize = 65535 * 256 + 77;
/// Sizes every elementwise kernel is tried at.
const SIZES: &[usize] = &[1, 7, 97, 255, 1023, 4099];

/// Runs a graph whose inputs are given by name, poisoning outputs first; returns output `y`.
fn run(ctx: &Context, g: &Graph, y: NodeId, inputs: &[(&str, &HostData)]) -> Vec<f32> {
    let mut exe = GpuExecutor::new(ctx, g).expect("executor");
    exe.poison_outputs();
    for (name, data) in inputs {
        exe.set_input_host(name, data).expect("input");
    }
    exe.run().expect("run");
    block(exe.read(y)).expect("read").to_f32()
}

fn check_binary(ctx: &Context, a_shape: &[usize], b_shape: &[usize], seed: u64) {
    for name in ["add", "mul"] {
        let t = OpTest {
            what: format!("{name} {a_shape:?} {b_shape:?}"),
            inputs: vec![uniform("a", a_shape, -4.0, 4.0), uniform("b", b_shape, -4.0, 4.0)],
            runtime: vec![],
            tol: Tol::Rel { rtol: 1e-6, atol: 0.0 },
        };
        check(ctx, &t, seed, |g, x| if name == "add" { g.add(x[0], x[1]) } else { g.mul(x[0], x[1]) });
    }
}

#[test]
fn add_and_mul_match_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("add/mul");
    for &n in SIZES {
        check_binary(&ctx, &[n], &[n], s + n as u64);
    }
    check_binary(&ctx, &[13, 7], &[7], s); // bias broadcast
    check_binary(&ctx, &[3, 5, 11], &[5, 11], s); // broadcast over the batch
    check_binary(&ctx, &[HUGE], &[HUGE], s);
}

type Unary = fn(&mut Graph, NodeId) -> webformer::Result<NodeId>;

fn check_unary(ctx: &Context, n: usize, seed: u64) {
    let cases: [(&str, Unary, f32, f32); 5] = [
        ("scale", |g, x| g.scale(x, Scalar::Const(-0.37)), 1e-6, 0.0),
        ("relu", |g, x| g.relu(x), 0.0, 0.0),
        ("gelu_erf", |g, x| g.gelu(x), 1e-5, 1e-6),
        ("gelu_tanh", |g, x| g.gelu_tanh(x), 1e-5, 1e-6),
        ("silu", |g, x| g.silu(x), 1e-5, 1e-6),
    ];
    for (name, build, rtol, atol) in cases {
        let t = OpTest {
            what: format!("{name} n={n}"),
            inputs: vec![uniform("a", &[n], -6.0, 6.0)],
            runtime: vec![],
            tol: Tol::Rel { rtol, atol },
        };
        check(ctx, &t, seed, |g, x| build(g, x[0]));
    }
}

#[test]
fn unary_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("unary");
    for &n in SIZES {
        check_unary(&ctx, n, s + n as u64);
    }
    check_unary(&ctx, HUGE, s);
}

#[test]
fn activations_stay_finite_at_extremes() {
    let Some(ctx) = gpu() else { return };
    let a = vec![-1e4f32, -100.0, -88.8, -20.0, 0.0, 20.0, 88.8, 100.0, 1e4];
    for act in [Activation::GeluErf, Activation::GeluTanh, Activation::Silu] {
        let mut g = Graph::new();
        let x = g.input("a", &[a.len()], DType::F32).unwrap();
        let y = g.activation(x, act).unwrap();
        g.output(y).unwrap();
        let got = run(&ctx, &g, y, &[("a", &HostData::F32(a.clone()))]);
        let want = cpu::elementwise::activation(&a, act);
        assert_close(&format!("{act:?} extremes"), &got, &want, 1e-5, 1e-6);
    }
}

#[test]
fn runtime_scale_reads_its_slot() {
    let Some(ctx) = gpu() else { return };
    let a = random(seed("runtime scale"), 301, -2.0, 2.0);
    let mut g = Graph::new();
    let x = g.input("a", &[301], DType::F32).unwrap();
    let y = g.scale(x, Scalar::Runtime(5)).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input("a", &a).unwrap();
    for f in [0.5f32, -3.25, 1e-3] {
        exe.set_runtime_f32(5, f).unwrap();
        exe.run().unwrap();
        let got = block(exe.read(y)).unwrap().to_f32();
        assert_close(&format!("scale by runtime {f}"), &got, &cpu::elementwise::scale(&a, f), 1e-6, 0.0);
    }
}

#[allow(clippy::too_many_arguments)]
fn check_matmul(
    ctx: &Context,
    batch: &[usize],
    m: usize,
    k: usize,
    n: usize,
    trans_b: bool,
    b_batched: bool,
    seed: u64,
) {
    let a_shape: Vec<usize> = batch.iter().copied().chain([m, k]).collect();
    let tail = if trans_b { [n, k] } else { [k, n] };
    let b_shape: Vec<usize> = if b_batched { batch.iter().copied().chain(tail).collect() } else { tail.to_vec() };
    let a = HostData::F32(random(seed, numel(&a_shape), -1.0, 1.0));
    let b = HostData::F32(random(seed + 1, numel(&b_shape), -1.0, 1.0));
    // Per element |got - want| <= 2·k·eps·Σ|a||b| (the dot-product error bound).
    let abs = |v: &HostData| v.to_f32().iter().map(|x| x.abs()).collect::<Vec<_>>();
    let out: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
    let bound = cpu::matmul::matmul(&abs(&a), &abs(&b), &a_shape, &b_shape, &out, trans_b);
    let tol = |i: usize, _: f32| 2.0 * k as f32 * f32::EPSILON * bound[i];
    let t = OpTest {
        what: format!("matmul {a_shape:?}x{b_shape:?} (trans_b {trans_b})"),
        inputs: vec![given("a", &a_shape, a), given("b", &b_shape, b)],
        runtime: vec![],
        tol: Tol::Bound(&tol),
    };
    check(ctx, &t, seed, |g, x| if trans_b { g.matmul_t(x[0], x[1]) } else { g.matmul(x[0], x[1]) });
}

#[test]
fn matmul_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("matmul");
    for (i, &(m, k, n)) in
        [(1, 1, 1), (1, 7, 1), (3, 5, 7), (17, 31, 13), (64, 64, 64), (97, 101, 89), (1, 576, 193)].iter().enumerate()
    {
        for trans_b in [false, true] {
            check_matmul(&ctx, &[], m, k, n, trans_b, false, s + i as u64);
        }
    }
    check_matmul(&ctx, &[3], 19, 23, 29, false, true, s);
    check_matmul(&ctx, &[2, 3], 5, 8, 11, true, true, s);
    check_matmul(&ctx, &[5], 33, 17, 9, true, false, s); // one weight shared by the batch
}

#[test]
fn matmul_beyond_65535_workgroups() {
    let Some(ctx) = gpu() else { return };
    // 65536 + 1 column tiles of 16: the tile grid must wrap into a second dimension.
    check_matmul(&ctx, &[], 1, 3, 16 * 65537 + 5, false, false, seed("matmul huge"));
}

#[test]
fn write_rows_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("write_rows");
    for &(rows, cols, r, start) in &[(1, 1, 1, 0), (7, 3, 2, 5), (97, 13, 11, 40), (HUGE / 2 + 1, 2, HUGE / 2, 1)] {
        let src = random(s, r * cols, -1.0, 1.0);
        let mut g = Graph::new();
        let st = g.state("cache", &[rows, cols], DType::F32).unwrap();
        let x = g.input("src", &[r, cols], DType::F32).unwrap();
        let y = g.write_rows(st, x, 3).unwrap();
        g.output(y).unwrap();
        let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
        exe.set_input("src", &src).unwrap();
        exe.set_runtime_u32(3, start as u32).unwrap();
        exe.run().unwrap();
        let got = block(exe.read(y)).unwrap().to_f32();
        let want = cpu::copy::write_rows(&vec![0.0; rows * cols], &src, cols, start);
        assert_close(&format!("write_rows {rows}x{cols} <- {r} at {start}"), &got, &want, 0.0, 0.0);
    }
}

#[test]
fn tensor_round_trips_every_dtype() {
    let Some(ctx) = gpu() else { return };
    let f = random(seed("tensor"), 37, -1.0, 1.0);
    let t = webformer::Tensor::from_slice(&ctx, &f, &[37]).unwrap();
    assert_eq!(block(t.to_vec::<f32>(&ctx)).unwrap(), f);
    let h: Vec<half::f16> = f.iter().map(|&x| half::f16::from_f32(x)).collect();
    let t = webformer::Tensor::from_slice(&ctx, &h, &[37]).unwrap(); // 74 bytes: padded upload
    assert_eq!(block(t.to_vec::<half::f16>(&ctx)).unwrap(), h);
    let u: Vec<u32> = (0..5).map(|i| i * 7919).collect();
    let t = webformer::Tensor::from_slice(&ctx, &u, &[5]).unwrap();
    assert_eq!(block(t.to_host(&ctx)).unwrap(), HostData::U32(u));
    assert!(block(t.to_vec::<f32>(&ctx)).is_err(), "reading u32 as f32 must be refused");
}

#[test]
fn matmul_epilogue_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("matmul epilogue");
    let (m, k, n) = (23, 37, 19);
    let a = random(s, m * k, -1.0, 1.0);
    let w = random(s + 1, n * k, -1.0, 1.0);
    let bias = random(s + 2, n, -1.0, 1.0);
    for act in
        [None, Some(Activation::GeluErf), Some(Activation::GeluTanh), Some(Activation::Silu), Some(Activation::Relu)]
    {
        for imp in [webformer::MatmulImpl::Auto, webformer::MatmulImpl::Naive] {
            let mut g = Graph::new();
            let x = g.input("x", &[m, k], DType::F32).unwrap();
            let wn = g.weight("w", &[n, k], w.clone()).unwrap();
            let bn = g.weight("b", &[n], bias.clone()).unwrap();
            let y = g.matmul_with(x, wn, webformer::MatmulOptions { trans_b: true, bias: Some(bn), act, imp }).unwrap();
            g.output(y).unwrap();
            let got = run(&ctx, &g, y, &[("x", &HostData::F32(a.clone()))]);
            let mut want = cpu::matmul::matmul(&a, &w, &[m, k], &[n, k], &[m, n], true);
            want = cpu::elementwise::add(&want, &bias);
            if let Some(act) = act {
                want = cpu::elementwise::activation(&want, act);
            }
            assert_close(&format!("linear {act:?} {imp:?}"), &got, &want, 1e-4, 1e-5);
        }
    }
}

#[test]
fn concat_rows_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("concat_rows");
    // One input; a single element; odd row counts and widths; a 3-D input flattened into rows;
    // an input of more than 65535 workgroups (the wrapped grid) after a small one.
    let cases: &[&[&[usize]]] = &[
        &[&[1, 1]],
        &[&[1, 1], &[1, 1]],
        &[&[3, 7], &[1, 7], &[5, 7]],
        &[&[2, 3, 13], &[11, 13], &[1, 13]],
        &[&[2, 3], &[HUGE / 3 + 1, 3]],
    ];
    for shapes in cases {
        let mut g = Graph::new();
        let xs: Vec<NodeId> =
            shapes.iter().enumerate().map(|(i, sh)| g.input(&format!("x{i}"), sh, DType::F32).unwrap()).collect();
        let y = g.concat_rows(&xs).unwrap();
        g.output(y).unwrap();
        let data: Vec<HostData> = shapes
            .iter()
            .enumerate()
            .map(|(i, sh)| HostData::F32(random(s + i as u64, numel(sh), -1.0, 1.0)))
            .collect();
        let names: Vec<String> = (0..shapes.len()).map(|i| format!("x{i}")).collect();
        let inputs: Vec<(&str, &HostData)> = names.iter().map(String::as_str).zip(&data).collect();
        let got = run(&ctx, &g, y, &inputs);
        let want: Vec<f32> = data.iter().flat_map(|d| d.to_f32()).collect();
        assert_close(&format!("concat_rows {shapes:?}"), &got, &want, 0.0, 0.0);
    }
    let mut g = Graph::new();
    let (a, b) = (g.input("a", &[2, 3], DType::F32).unwrap(), g.input("b", &[2, 4], DType::F32).unwrap());
    assert!(g.concat_rows(&[a, b]).unwrap_err().to_string().contains("cannot be stacked"));
    assert!(g.concat_rows(&[]).unwrap_err().to_string().contains("at least one input"));
}

#[test]
fn rows_match_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("rows");
    for &(shape, start, count) in &[
        (&[1usize, 1][..], 0, 1),
        (&[7, 13][..], 6, 1),
        (&[3, 5, 11][..], 4, 9),
        (&[HUGE / 3 + 1, 3][..], 5, HUGE / 3 - 9),
    ] {
        let x = random(s, numel(shape), -1.0, 1.0);
        let mut g = Graph::new();
        let a = g.input("a", shape, DType::F32).unwrap();
        let y = g.rows(a, start, count).unwrap();
        g.output(y).unwrap();
        let got = run(&ctx, &g, y, &[("a", &HostData::F32(x.clone()))]);
        let cols = shape[shape.len() - 1];
        assert_close(
            &format!("rows {shape:?} {start}+{count}"),
            &got,
            &cpu::copy::rows(&x, cols, start, count),
            0.0,
            0.0,
        );
    }
    let mut g = Graph::new();
    let a = g.input("a", &[4, 2], DType::F32).unwrap();
    assert!(g.rows(a, 3, 2).unwrap_err().to_string().contains("outside the 4 rows"));
}
