//! One harness for op tests: a test names the op (a graph builder), its inputs (shapes, dtypes,
//! how values are drawn), runtime slots and a tolerance; the harness draws seeded inputs,
//! poisons the GPU outputs with NaN (so an element a kernel forgets to write fails), runs the
//! graph on the GPU and on the CPU executor (the references in `webformer::cpu`), and compares
//! element by element with a message that names the op, the shapes, the seed and the first bad
//! element. NaN anywhere fails.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webformer::{numel, Context, CpuExecutor, DType, GpuExecutor, Graph, HostData, NodeId};

use super::block;

/// How an input's values are made.
#[derive(Clone, Debug)]
pub enum Draw {
    /// f32 uniform in [lo, hi).
    Uniform(f32, f32),
    /// u32 uniform in [0, n).
    Ids(u32),
    /// These values exactly (already of the input's dtype and length).
    Given(HostData),
}

/// One graph input of an op test.
#[derive(Clone, Debug)]
pub struct Input {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub draw: Draw,
}

/// An input drawn uniformly in [lo, hi) (f32).
pub fn uniform(name: &'static str, shape: &[usize], lo: f32, hi: f32) -> Input {
    Input { name, shape: shape.to_vec(), draw: Draw::Uniform(lo, hi) }
}

/// u32 ids in [0, n).
pub fn ids(name: &'static str, shape: &[usize], n: u32) -> Input {
    Input { name, shape: shape.to_vec(), draw: Draw::Ids(n) }
}

/// An input with given values.
pub fn given(name: &'static str, shape: &[usize], data: HostData) -> Input {
    Input { name, shape: shape.to_vec(), draw: Draw::Given(data) }
}

/// Per-element tolerance: |gpu - cpu| <= atol + rtol · |cpu|, or a bound per element.
pub enum Tol<'a> {
    Rel {
        rtol: f32,
        atol: f32,
    },
    /// The allowed |gpu - cpu| of element i whose reference value is r: `f(i, r)` (e.g. a
    /// dot-product error bound).
    Bound(&'a dyn Fn(usize, f32) -> f32),
    /// Integer results that must be equal.
    Exact,
}

/// An op test: what to build and how to judge it.
pub struct OpTest<'a> {
    /// Names the case in failure messages (op and shapes, say).
    pub what: String,
    pub inputs: Vec<Input>,
    /// Runtime slots set before the run, (slot, value).
    pub runtime: Vec<(u32, u32)>,
    pub tol: Tol<'a>,
}

impl Input {
    fn data(&self, seed: u64) -> HostData {
        let n = numel(&self.shape);
        let mut rng = StdRng::seed_from_u64(seed);
        match &self.draw {
            Draw::Uniform(lo, hi) => HostData::F32((0..n).map(|_| rng.random_range(*lo..*hi)).collect()),
            Draw::Ids(m) => HostData::U32((0..n).map(|_| rng.random_range(0..*m)).collect()),
            Draw::Given(d) => d.clone(),
        }
    }
}

/// What `check` ran, for tests that need more than the comparison.
pub struct Ran {
    pub gpu: HostData,
    pub cpu: HostData,
    pub inputs: Vec<HostData>,
}

/// Builds the op over the test's inputs (`build` gets their node ids in order), runs it on the
/// GPU and on the CPU references, and asserts the two agree within the tolerance.
pub fn check(
    ctx: &Context,
    t: &OpTest,
    seed: u64,
    build: impl FnOnce(&mut Graph, &[NodeId]) -> webformer::Result<NodeId>,
) -> Ran {
    let what = format!("{} (seed {seed}; replay with WEBFORMER_SEED={seed})", t.what);
    let data: Vec<HostData> = t.inputs.iter().enumerate().map(|(i, x)| x.data(seed.wrapping_add(i as u64))).collect();
    let mut g = Graph::new();
    let ids: Vec<NodeId> = t
        .inputs
        .iter()
        .zip(&data)
        .map(|(x, d)| g.input(x.name, &x.shape, d.dtype()).unwrap_or_else(|e| panic!("{what}: input {}: {e}", x.name)))
        .collect();
    let y = build(&mut g, &ids).unwrap_or_else(|e| panic!("{what}: building the op: {e}"));
    g.output(y).unwrap_or_else(|e| panic!("{what}: {e}"));

    let mut gpu = GpuExecutor::new(ctx, &g).unwrap_or_else(|e| panic!("{what}: preparing the GPU plan: {e}"));
    gpu.poison_outputs();
    let mut cpu = CpuExecutor::new(&g);
    for (x, d) in t.inputs.iter().zip(&data) {
        gpu.set_input_host(x.name, d).unwrap_or_else(|e| panic!("{what}: {e}"));
        cpu.set_input(x.name, d).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    for &(slot, v) in &t.runtime {
        gpu.set_runtime_u32(slot, v).unwrap_or_else(|e| panic!("{what}: {e}"));
        cpu.set_runtime_u32(slot, v).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    gpu.run().unwrap_or_else(|e| panic!("{what}: GPU run: {e}"));
    cpu.run().unwrap_or_else(|e| panic!("{what}: CPU run: {e}"));
    let got = block(gpu.read(y)).unwrap_or_else(|e| panic!("{what}: reading the result: {e}"));
    let want = cpu.value(y).unwrap_or_else(|e| panic!("{what}: {e}")).clone();
    compare(&what, &got, &want, &t.tol);
    Ran { gpu: got, cpu: want, inputs: data }
}

/// Element-by-element comparison; panics naming the first bad element.
pub fn compare(what: &str, got: &HostData, want: &HostData, tol: &Tol) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: GPU gives {}, the reference {}", got.dtype(), want.dtype());
    assert_eq!(got.len(), want.len(), "{what}: {} elements on the GPU, {} in the reference", got.len(), want.len());
    if let (HostData::U32(g), HostData::U32(w)) = (got, want) {
        if let Some(i) = g.iter().zip(w).position(|(a, b)| a != b) {
            panic!("{what}: element {i} is {}, reference {}", g[i], w[i]);
        }
        return;
    }
    let (g, w) = (got.to_f32(), want.to_f32());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let bound = match tol {
            Tol::Rel { rtol, atol } => atol + rtol * b.abs(),
            Tol::Bound(f) => f(i, *b),
            Tol::Exact => 0.0,
        };
        // Written so that NaN on either side fails.
        assert!((a - b).abs() <= bound, "{what}: element {i} is {a}, reference {b} (allowed |diff| {bound})");
    }
}

/// Dtype of a draw, for tests that build graphs themselves.
pub fn dtype_of(d: &Draw) -> DType {
    match d {
        Draw::Uniform(..) => DType::F32,
        Draw::Ids(_) => DType::U32,
        Draw::Given(h) => h.dtype(),
    }
}
