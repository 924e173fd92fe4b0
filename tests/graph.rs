//! Graph executor: random graphs agree on GPU and CPU, the memory plan never overlaps live
//! tensors, replay allocates nothing, and bad graphs give clear errors.

mod common;

use common::{assert_close, block, feature_named, gpu, random, require_feature, required_features, seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webformer::{
    exec, numel, CpuExecutor, DType, Error, GpuExecutor, Graph, HostData, NodeId, Plan, PlanOptions, Scalar, Storage,
};

/// A random graph of chains and diamonds over a few shapes: unary ops, binary ops against
/// earlier nodes (diamonds) or weights (broadcast), and matmuls that change the width.
fn random_graph(seed: u64, nodes: usize) -> (Graph, Vec<(String, HostData)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = Graph::new();
    let rows = rng.random_range(1..9);
    let width = rng.random_range(1..40);
    let x = g.input("x", &[rows, width], DType::F32).unwrap();
    let inputs = vec![("x".to_string(), HostData::F32(random(seed, rows * width, -1.0, 1.0)))];
    let mut pool = vec![x];
    for i in 0..nodes {
        let a = pool[rng.random_range(0..pool.len())];
        let sa = g.node(a).shape.clone();
        let same: Vec<NodeId> = pool.iter().copied().filter(|p| g.node(*p).shape == sa).collect();
        let y = match rng.random_range(0..7) {
            0 => g.gelu(a).unwrap(),
            1 => g.silu(a).unwrap(),
            2 => g.scale(a, Scalar::Const(rng.random_range(-1.5..1.5))).unwrap(),
            3 => {
                // Diamond: combine two nodes of the same shape (maybe the same node).
                let b = same[rng.random_range(0..same.len())];
                if rng.random_bool(0.5) { g.add(a, b) } else { g.mul(a, b) }.unwrap()
            }
            4 => {
                let w = g.weight(&format!("bias{i}"), &[sa[1]], random(seed + i as u64, sa[1], -1.0, 1.0)).unwrap();
                g.add(a, w).unwrap()
            }
            5 => {
                let n = rng.random_range(1..40);
                let w = g.weight(&format!("w{i}"), &[n, sa[1]], random(seed + i as u64, n * sa[1], -0.5, 0.5)).unwrap();
                g.matmul_t(a, w).unwrap()
            }
            _ => g.relu(a).unwrap(),
        };
        pool.push(y);
    }
    // Outputs: the last node and one random earlier one.
    g.output(*pool.last().unwrap()).unwrap();
    g.output(pool[rng.random_range(1..pool.len())]).unwrap();
    (g, inputs)
}

#[test]
fn random_graphs_agree_on_gpu_and_cpu() {
    let Some(ctx) = gpu() else { return };
    let s = seed("random graphs");
    for k in 0..12 {
        let (g, inputs) = random_graph(s + k, 5 + (k as usize * 7) % 40);
        let mut gpu = GpuExecutor::new(&ctx, &g).unwrap();
        let mut cpu = CpuExecutor::new(&g);
        gpu.poison_outputs();
        for (n, d) in &inputs {
            gpu.set_input_host(n, d).unwrap();
            cpu.set_input(n, d).unwrap();
        }
        gpu.run().unwrap();
        cpu.run().unwrap();
        for &y in g.outputs() {
            let got = block(gpu.read(y)).unwrap().to_f32();
            let want = cpu.value(y).unwrap().to_f32();
            assert_close(&format!("graph {k} (seed {}) output #{}\n{}", s + k, y.0, g.dump()), &got, &want, 1e-4, 1e-5);
        }
        check_plan(&g, gpu.plan());
    }
}

#[test]
fn compare_mode_names_the_first_bad_node() {
    let Some(ctx) = gpu() else { return };
    let (g, inputs) = random_graph(seed("compare"), 20);
    let inputs: Vec<(&str, HostData)> = inputs.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let report = block(exec::compare(&ctx, &g, &inputs, &[], 1e-4, 1e-5)).unwrap();
    assert!(report.is_none(), "GPU and CPU should agree: {}", report.unwrap());
    // With a negative tolerance nothing can pass: the first node in order must be reported.
    let report = block(exec::compare(&ctx, &g, &inputs, &[], 0.0, -1.0)).unwrap().expect("a mismatch");
    let first = Plan::with_options(&g, PlanOptions { reuse: false }).order[0];
    assert_eq!(report.node, first, "{report}");
}

#[test]
fn compare_names_the_first_approximate_node_at_zero_tolerance() {
    // relu, x + x and a scale by 0.5 are exact in f32 on both sides (one correctly rounded
    // operation, or none); a matmul over k = 257 is not (the GPU sums in f32, the reference in
    // f64), and the relu after it inherits its difference. At zero tolerance the report must
    // name the matmul: not an earlier exact node (which would mean compare misreads values),
    // not the later relu (which would mean it does not stop at the first).
    let Some(ctx) = gpu() else { return };
    let s = seed("compare zero tolerance");
    let (rows, k, n) = (7, 257, 13);
    let mut g = Graph::new();
    let x = g.input("x", &[rows, k], DType::F32).unwrap();
    let r = g.relu(x).unwrap();
    let d = g.add(r, r).unwrap();
    let h = g.scale(d, Scalar::Const(0.5)).unwrap();
    let w = g.weight("w", &[n, k], random(s + 1, n * k, -1.0, 1.0)).unwrap();
    let m = g.matmul_t(h, w).unwrap();
    let y = g.relu(m).unwrap();
    g.output(y).unwrap();
    let inputs = [("x", HostData::F32(random(s, rows * k, -1.0, 1.0)))];
    let order = Plan::with_options(&g, PlanOptions { reuse: false }).order;
    assert_eq!(order, vec![r, d, h, m, y], "the plan runs the nodes in the order built");
    let report = block(exec::compare(&ctx, &g, &inputs, &[], 0.0, 0.0)).unwrap().expect("the matmul differs");
    assert_eq!(report.node, m, "{report}");
    assert_eq!(report.lengths, (rows * n, rows * n), "{report}");
    assert!(report.gpu != report.cpu && report.gpu.is_finite(), "{report}");
    // Within f32 rounding of a k = 257 dot product the whole graph agrees.
    let report = block(exec::compare(&ctx, &g, &inputs, &[], 1e-4, 1e-5)).unwrap();
    assert!(report.is_none(), "{}", report.unwrap());
}

/// No two tensors that share a pool buffer are alive at the same step, and every tensor fits.
fn check_plan(g: &Graph, plan: &Plan) {
    let pooled: Vec<(usize, usize)> = (0..g.nodes().len())
        .filter_map(|i| match plan.storage[i] {
            Some(Storage::Pool(p)) => Some((i, p)),
            _ => None,
        })
        .collect();
    for &(i, p) in &pooled {
        assert!(g.nodes()[i].bytes() <= plan.pools[p], "node #{i} does not fit pool {p}");
        for &(j, q) in &pooled {
            if i < j && p == q {
                let (a, b) = (plan.lifetime[i].unwrap(), plan.lifetime[j].unwrap());
                assert!(a.1 < b.0 || b.1 < a.0, "nodes #{i} {a:?} and #{j} {b:?} share pool {p} while both alive");
            }
        }
    }
    // Every node a step reads or writes has storage.
    for id in &plan.order {
        assert!(plan.storage[id.0].is_some());
        for x in &g.node(*id).inputs {
            assert!(plan.storage[x.0].is_some(), "input #{} of #{} has no storage", x.0, id.0);
        }
    }
}

/// A transformer-block-shaped graph (no attention kernels yet: the projections, residuals
/// and MLP of a block, repeated).
fn block_graph(layers: usize, tokens: usize, hidden: usize) -> Graph {
    let mut g = Graph::new();
    let mut h = g.input("x", &[tokens, hidden], DType::F32).unwrap();
    for l in 0..layers {
        let w = |g: &mut Graph, name: &str, o: usize, i: usize| {
            g.weight(&format!("{name}{l}"), &[o, i], vec![0.01f32; o * i]).unwrap()
        };
        let wq = w(&mut g, "q", hidden, hidden);
        let wo = w(&mut g, "o", hidden, hidden);
        let w1 = w(&mut g, "up", 4 * hidden, hidden);
        let w2 = w(&mut g, "down", hidden, 4 * hidden);
        let q = g.matmul_t(h, wq).unwrap();
        let a = g.matmul_t(q, wo).unwrap();
        let r = g.add(h, a).unwrap();
        let u = g.matmul_t(r, w1).unwrap();
        let u = g.gelu(u).unwrap();
        let d = g.matmul_t(u, w2).unwrap();
        h = g.add(r, d).unwrap();
    }
    g.output(h).unwrap();
    g
}

#[test]
fn memory_plan_reuses_buffers_on_a_block_shaped_graph() {
    let g = block_graph(4, 16, 64);
    let plan = Plan::new(&g);
    check_plan(&g, &plan);
    let (pooled, sum) = (plan.pooled_bytes(), plan.intermediate_bytes);
    println!("{}", plan.dump(&g));
    assert!(pooled * 4 <= sum, "pooled {pooled} bytes should be at most a quarter of the unplanned {sum}");
    // Reuse off: every node pinned, nothing pooled.
    let flat = Plan::with_options(&g, PlanOptions { reuse: false });
    assert_eq!(flat.pooled_bytes(), 0);
    assert!(plan.peak_bytes() < flat.peak_bytes());
}

#[test]
fn random_plans_never_overlap_live_tensors() {
    let s = seed("random plans");
    for k in 0..200 {
        let (g, _) = random_graph(s + k, 60);
        check_plan(&g, &Plan::new(&g));
    }
}

#[test]
fn replay_allocates_nothing() {
    let Some(ctx) = gpu() else { return };
    let (rows, cols) = (64, 5);
    let mut g = Graph::new();
    let cache = g.state("cache", &[rows, cols], DType::F32).unwrap();
    let x = g.input("x", &[1, cols], DType::F32).unwrap();
    let y = g.scale(x, Scalar::Runtime(1)).unwrap(); // factor changes every run
    let y = g.gelu(y).unwrap();
    let cache = g.write_rows(cache, y, 0).unwrap(); // at the position in slot 0
    g.output(cache).unwrap();
    let xs = random(seed("replay"), cols, -1.0, 1.0);
    let mut gpu = GpuExecutor::new(&ctx, &g).unwrap();
    let mut cpu = CpuExecutor::new(&g);
    gpu.set_input("x", &xs).unwrap();
    cpu.set_input("x", &HostData::F32(xs.clone())).unwrap();
    gpu.run().unwrap();
    block(gpu.read(cache)).unwrap(); // first read makes its staging buffer
    let before = ctx.buffers_created();
    for i in 0..1000u32 {
        let (pos, f) = (i % rows as u32, 1.0 + i as f32 / 100.0);
        gpu.set_runtime_u32(0, pos).unwrap();
        gpu.set_runtime_f32(1, f).unwrap();
        cpu.set_runtime_u32(0, pos).unwrap();
        cpu.set_runtime_f32(1, f).unwrap();
        gpu.run().unwrap();
        cpu.run().unwrap();
        if i % 97 == 0 || i == 999 {
            let got = block(gpu.read(cache)).unwrap().to_f32();
            assert_close(&format!("cache after run {i}"), &got, &cpu.value(cache).unwrap().to_f32(), 1e-5, 1e-6);
        }
    }
    assert_eq!(ctx.buffers_created(), before, "replaying the plan must not allocate GPU buffers");
}

#[test]
fn bad_graphs_give_clear_errors() {
    let mut g = Graph::new();
    let a = g.input("a", &[4, 8], DType::F32).unwrap();
    let b = g.input("b", &[3, 8], DType::F32).unwrap();
    let e = g.add(a, b).unwrap_err().to_string();
    assert!(e.contains("add") && e.contains("[4, 8]") && e.contains("[3, 8]"), "{e}");
    let e = g.matmul(a, b).unwrap_err().to_string();
    assert!(e.contains("matmul") && e.contains("inner dimensions"), "{e}");
    // Cycle attempt: a node cannot name one that does not exist yet.
    let e = g.add(a, NodeId(99)).unwrap_err();
    assert!(matches!(e, Error::UnknownNode { id: 99, .. }) && e.to_string().contains("cycles"), "{e}");
    let e = g.input("a", &[2], DType::F32).unwrap_err().to_string();
    assert!(e.contains("already used"), "{e}");
    let e = g.input("z", &[2, 0], DType::F32).unwrap_err().to_string();
    assert!(e.contains("at least 1"), "{e}");
    let u = g.input("ids", &[4], DType::U32).unwrap();
    let e = g.gelu(u).unwrap_err().to_string();
    assert!(e.contains("expected dtype f32") && e.contains("u32"), "{e}");
    let e = g.weight("w", &[2, 2], vec![1.0f32; 3]).unwrap_err().to_string();
    assert!(e.contains("4 elements") && e.contains("3 values"), "{e}");
    let e = g.scale(a, Scalar::Runtime(99)).unwrap_err().to_string();
    assert!(e.contains("runtime slot 99"), "{e}");
}

#[test]
fn bad_runs_give_clear_errors() {
    let Some(ctx) = gpu() else { return };
    let mut g = Graph::new();
    let a = g.input("a", &[4, 8], DType::F32).unwrap();
    let y = g.relu(a).unwrap();
    let h = g.gelu(y).unwrap();
    g.output(h).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    let e = exe.run().unwrap_err().to_string();
    assert!(e.contains("'a'") && e.contains("not given a value"), "{e}");
    let e = exe.set_input("a", &[1.0f32; 31]).unwrap_err().to_string();
    assert!(e.contains("32 elements") && e.contains("given 31"), "{e}");
    let e = exe.set_input("b", &[1.0f32; 32]).unwrap_err().to_string();
    assert!(e.contains("no input named 'b'") && e.contains("a"), "{e}");
    let e = exe.set_input("a", &[1u32; 32]).unwrap_err().to_string();
    assert!(e.contains("expected dtype f32"), "{e}");
    exe.set_input("a", &[1.0f32; 32]).unwrap();
    exe.run().unwrap();
    let e = block(exe.read(y)).unwrap_err().to_string();
    assert!(e.contains("intermediate"), "{e}");
    // A state write that would run past the state's end is refused before the GPU sees it.
    let mut g = Graph::new();
    let c = g.state("c", &[4, 2], DType::F32).unwrap();
    let x = g.input("x", &[2, 2], DType::F32).unwrap();
    let w = g.write_rows(c, x, 0).unwrap();
    g.output(w).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input("x", &[0.0f32; 4]).unwrap();
    exe.set_runtime_u32(0, 3).unwrap();
    let e = exe.run().unwrap_err().to_string();
    assert!(e.contains("do not fit"), "{e}");
}

#[test]
fn adapter_has_the_required_features() {
    // The suite says which adapter it ran on, and fails (rather than letting feature-gated
    // tests skip) when WEBFORMER_REQUIRE_FEATURES names a feature the adapter lacks.
    let Some(ctx) = gpu() else { return };
    eprintln!("adapter under test: {}", ctx.adapter().one_line());
    for name in required_features() {
        let f = feature_named(&name).unwrap_or_else(|| {
            panic!("WEBFORMER_REQUIRE_FEATURES: unknown feature {name:?} (shader-f16, subgroups, timestamp-query)")
        });
        assert!(require_feature(&ctx, f, &name));
    }
}

#[test]
fn dead_nodes_are_not_run() {
    let mut g = Graph::new();
    let a = g.input("a", &[3], DType::F32).unwrap();
    let _unused = g.gelu(a).unwrap();
    let y = g.relu(a).unwrap();
    g.output(y).unwrap();
    let plan = Plan::new(&g);
    assert_eq!(plan.order, vec![y]);
}

#[test]
fn profile_covers_every_node() {
    let Some(ctx) = gpu() else { return };
    if !require_feature(&ctx, wgpu::Features::TIMESTAMP_QUERY, "timestamp-query") {
        return;
    }
    let g = block_graph(1, 8, 32);
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input("x", &vec![0.5f32; numel(&[8, 32])]).unwrap();
    let p = block(exe.run_profiled()).unwrap();
    assert_eq!(p.rows.len(), exe.steps());
    let table = p.table();
    assert!(table.contains("matmul") && table.contains("gelu_erf"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), exe.steps());
    assert!(g.to_dot().contains("->"));
}

#[test]
fn reshape_is_a_free_view() {
    let Some(ctx) = gpu() else { return };
    let x = random(seed("reshape"), 24, -1.0, 1.0);
    let mut g = Graph::new();
    let a = g.input("a", &[4, 6], DType::F32).unwrap();
    let h = g.gelu(a).unwrap();
    let v = g.reshape(h, &[2, 12]).unwrap(); // a view of a pooled intermediate...
    let w = g.weight("w", &[12], random(7, 12, -1.0, 1.0)).unwrap();
    let y = g.add(v, w).unwrap();
    let z = g.reshape(y, &[24]).unwrap(); // ...and an output read through a view
    g.output(z).unwrap();
    assert!(g.reshape(a, &[5, 5]).unwrap_err().to_string().contains("24 elements"));
    let plan = Plan::new(&g);
    assert_eq!(plan.order.len(), 2, "views launch nothing:\n{}", plan.dump(&g));
    check_plan(&g, &plan);
    let mut gpu = GpuExecutor::new(&ctx, &g).unwrap();
    let mut cpu = CpuExecutor::new(&g);
    gpu.set_input("a", &x).unwrap();
    cpu.set_input("a", &HostData::F32(x)).unwrap();
    gpu.run().unwrap();
    cpu.run().unwrap();
    let got = block(gpu.read(z)).unwrap().to_f32();
    assert_close("reshape chain", &got, &cpu.value(z).unwrap().to_f32(), 1e-5, 1e-6);
}

#[test]
fn executors_share_weights_and_state_by_name() {
    let Some(ctx) = gpu() else { return };
    let s = seed("shared buffers");
    let w = std::sync::Arc::new(HostData::F32(random(s, 3 * 4, -1.0, 1.0)));
    // Two graphs over one "model": a 3-row prefill and a 1-row step, both writing into one cache.
    let build = |rows: usize| {
        let mut g = Graph::new();
        let x = g.input("x", &[rows, 4], DType::F32).unwrap();
        let wn = g.weight_arc("w", &[3, 4], w.clone()).unwrap();
        let cache = g.state("cache", &[8, 3], DType::F32).unwrap();
        let y = g.matmul_t(x, wn).unwrap();
        let c = g.write_rows(cache, y, 0).unwrap();
        g.output(c).unwrap();
        (g, c)
    };
    let (g3, _) = build(3);
    let (g1, c1) = build(1);
    let mut shared = webformer::SharedBuffers::new();
    let mut prefill = GpuExecutor::with_shared(&ctx, &g3, &Plan::new(&g3), &mut shared).unwrap();
    let before = ctx.buffers_created();
    let mut step = GpuExecutor::with_shared(&ctx, &g1, &Plan::new(&g1), &mut shared).unwrap();
    // The step graph makes its own input, output-free params and runtime buffers, but no
    // weight and no cache: those come from the prefill executor.
    let made = ctx.buffers_created() - before;
    let x3 = random(s + 1, 12, -1.0, 1.0);
    let x1 = random(s + 2, 4, -1.0, 1.0);
    prefill.set_input("x", &x3).unwrap();
    prefill.run().unwrap();
    step.set_input("x", &x1).unwrap();
    step.set_runtime_u32(0, 3).unwrap();
    step.run().unwrap();
    let got = block(step.read(c1)).unwrap().to_f32();
    let wv = w.to_f32();
    let mut want = webformer::cpu::matmul::matmul(&x3, &wv, &[3, 4], &[3, 4], &[3, 3], true);
    want.extend(webformer::cpu::matmul::matmul(&x1, &wv, &[1, 4], &[3, 4], &[1, 3], true));
    want.resize(24, 0.0);
    assert_close("cache written by two executors", &got, &want, 1e-5, 1e-6);
    let fresh_before = ctx.buffers_created();
    let _alone = GpuExecutor::new(&ctx, &g1).unwrap();
    let alone = ctx.buffers_created() - fresh_before;
    assert_eq!(alone, made + 2, "sharing should save exactly the weight and the cache buffers");
}
