//! Multiplies two random matrices on the GPU and checks the product against webformer's CPU
//! reference: the smallest complete program on the engine (a graph, a GPU executor, a read).
//!
//! ```text
//! cargo run --release --example matmul -- [M K N]      # default 256 384 320
//! ```
//!
//! Prints the adapter, the GPU time of one run (GPU timestamps where the adapter has them,
//! wall clock otherwise) and the largest relative error against the CPU.

use rand::{rngs::StdRng, Rng, SeedableRng};
use webformer::{Context, CpuExecutor, DType, GpuExecutor, Graph, HostData};

fn main() {
    // Mesa's Vulkan drivers complain on stderr without XDG_RUNTIME_DIR; this points it at a
    // private folder first (a no-op where it is set), as the webformer CLI does.
    webformer::gpu::ensure_runtime_dir();
    if let Err(e) = pollster::block_on(run()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `[M, K, N]` from the command line, or the defaults.
fn sizes() -> webformer::Result<[usize; 3]> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return Ok([256, 384, 320]);
    }
    let parsed: Vec<usize> = args.iter().filter_map(|a| a.parse().ok().filter(|&v| v > 0)).collect();
    match parsed[..] {
        [m, k, n] if args.len() == 3 => Ok([m, k, n]),
        _ => Err(webformer::Error::Usage(format!("expected three positive sizes M K N, got {args:?}"))),
    }
}

async fn run() -> webformer::Result<()> {
    let [m, k, n] = sizes()?;
    let ctx = Context::new().await?;
    println!("adapter: {}", ctx.adapter().one_line());

    // The graph: C = A · B, with A and B fed at run time.
    let mut g = Graph::new();
    let a = g.input("a", &[m, k], DType::F32)?;
    let b = g.input("b", &[k, n], DType::F32)?;
    let c = g.matmul(a, b)?;
    g.output(c)?;

    let mut rng = StdRng::seed_from_u64(1);
    let mut random = |len: usize| (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<f32>>();
    let (av, bv) = (random(m * k), random(k * n));

    let mut gpu = GpuExecutor::new(&ctx, &g)?;
    gpu.set_input("a", &av)?;
    gpu.set_input("b", &bv)?;
    gpu.run()?; // the first run compiles the pipelines
    let started = std::time::Instant::now();
    let ns = match gpu.run_timed().await {
        Ok(ns) => ns,
        Err(_) => {
            gpu.run()?;
            ctx.sync().await?;
            started.elapsed().as_nanos() as f64
        }
    };
    let got = gpu.read(c).await?.to_f32();

    let mut cpu = CpuExecutor::new(&g);
    cpu.set_input("a", &HostData::F32(av))?;
    cpu.set_input("b", &HostData::F32(bv))?;
    cpu.run()?;
    let want = cpu.value(c)?.to_f32();

    let scale = want.iter().fold(0f32, |s, v| s.max(v.abs())).max(f32::MIN_POSITIVE);
    let err = got.iter().zip(&want).map(|(g, w)| (g - w).abs() / scale).fold(0f32, nan_max);
    let gflops = 2.0 * (m * k * n) as f64 / ns;
    println!(
        "[{m}x{k}] x [{k}x{n}]: {:.3} ms, {gflops:.1} GFLOP/s, max error {err:.1e} (relative to max |C|)",
        ns / 1e6
    );
    if err.is_nan() || err > 1e-4 {
        return Err(webformer::Error::Usage(format!("the GPU product differs from the CPU's by {err:e}")));
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
