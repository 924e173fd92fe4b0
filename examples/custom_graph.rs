//! Builds a small graph by hand (a projection, GELU, a residual add and a softmax), plans its
//! memory once, replays the plan many times and prints where the GPU time goes, node by node.
//! This is how models are built in webformer: graphs of ops, planned once, replayed per call.
//!
//! ```text
//! cargo run --release --example custom_graph -- [ROWS WIDTH REPLAYS]   # default 64 256 100
//! ```

use rand::{rngs::StdRng, Rng, SeedableRng};
use webformer::{Context, CpuExecutor, DType, GpuExecutor, Graph, HostData, Plan, PlanOptions};

fn main() {
    // Mesa's Vulkan drivers complain on stderr without XDG_RUNTIME_DIR; this points it at a
    // private folder first (a no-op where it is set), as the webformer CLI does.
    webformer::gpu::ensure_runtime_dir();
    if let Err(e) = pollster::block_on(run()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn arg(i: usize, default: usize) -> webformer::Result<usize> {
    match std::env::args().nth(i) {
        None => Ok(default),
        Some(s) => {
            s.parse().ok().filter(|&v| v > 0).ok_or_else(|| {
                webformer::Error::Usage(format!("argument {i} must be a positive whole number, got '{s}'"))
            })
        }
    }
}

async fn run() -> webformer::Result<()> {
    let (rows, width, replays) = (arg(1, 64)?, arg(2, 256)?, arg(3, 100)?);
    let ctx = Context::new().await?;
    println!("adapter: {}", ctx.adapter().one_line());

    let mut rng = StdRng::seed_from_u64(7);
    let mut random = |len: usize, s: f32| (0..len).map(|_| rng.random_range(-s..s)).collect::<Vec<f32>>();

    // y = softmax(x + gelu(x · W)), row by row.
    let mut g = Graph::new();
    let x = g.input("x", &[rows, width], DType::F32)?;
    let w = g.weight("w", &[width, width], random(width * width, 1.0 / (width as f32).sqrt()))?;
    let h = g.matmul(x, w)?;
    let h = g.gelu(h)?;
    let r = g.add(x, h)?;
    let y = g.softmax(r)?;
    g.output(y)?;

    // One plan: intermediates share pooled buffers; the executor records every dispatch once.
    let plan = Plan::with_options(&g, PlanOptions::default());
    let mut exe = GpuExecutor::with_plan(&ctx, &g, &plan)?;
    let pooled: u64 = exe.plan().pools.iter().sum();
    println!(
        "{} nodes, {} dispatches per run; intermediates of {} KiB share {} KiB of pooled buffers",
        g.nodes().len(),
        exe.steps(),
        exe.plan().intermediate_bytes / 1024,
        pooled / 1024
    );
    let input = random(rows * width, 1.0);
    exe.set_input("x", &input)?;

    exe.run()?;
    let started = std::time::Instant::now();
    for _ in 0..replays {
        exe.run()?;
    }
    ctx.sync().await?;
    let per_run = started.elapsed().as_secs_f64() / replays as f64;
    println!("{replays} replays: {:.3} ms per run (wall clock, submission included)", per_run * 1e3);

    match exe.run_profiled().await {
        Ok(profile) => print!("per node (GPU timestamps):\n{}", profile.table()),
        Err(e) => println!("no per-node timing on this adapter: {e}"),
    }

    // The same graph on the CPU reference, to show the result is right.
    let got = exe.read(y).await?.to_f32();
    let mut cpu = CpuExecutor::new(&g);
    cpu.set_input("x", &HostData::F32(input))?;
    cpu.run()?;
    let want = cpu.value(y)?.to_f32();
    let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, nan_max);
    println!("max |GPU - CPU| = {err:.1e}");
    if err.is_nan() || err > 1e-5 {
        return Err(webformer::Error::Usage(format!("GPU and CPU differ by {err:e}")));
    }
    Ok(())
}

/// The largest of two differences, where a NaN wins (`f32::max` would skip it).
fn nan_max(m: f32, d: f32) -> f32 {
    if d.is_nan() || d > m {
        d
    } else {
        m
    }
}
