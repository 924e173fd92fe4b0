//! GEMM throughput: square matmuls (n x n x n) with the naive baseline and each tuned kernel
//! the adapter can run (tiled; subgroup with SUBGROUP; both again with f16 B with SHADER_F16),
//! for B stored [k, n] (`nn`, a · b) and [n, k] (`nt`, a · bᵀ, linear layers).

use super::{time, values};
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{Graph, MatmulImpl, MatmulOptions};
use crate::kernels::gemm;
use crate::tensor::{DType, HostData};

/// The kernels worth timing on this adapter: (label, implementation, B's dtype).
fn kernels(ctx: &Context) -> Vec<(&'static str, MatmulImpl, DType)> {
    let subgroup = gemm::subgroup_support(ctx).is_ok();
    let f16 = ctx.has(wgpu::Features::SHADER_F16);
    let mut v = vec![("naive", MatmulImpl::Naive, DType::F32), ("tiled", MatmulImpl::Tiled, DType::F32)];
    if subgroup {
        v.push(("subgroup", MatmulImpl::Subgroup, DType::F32));
    }
    if f16 {
        v.push(("tiled", MatmulImpl::Tiled, DType::F16));
        if subgroup {
            v.push(("subgroup", MatmulImpl::Subgroup, DType::F16));
        }
    }
    v
}

/// Times every kernel at every size in `sizes` and layout in `layouts` ("nn", "nt"); the naive
/// kernel only up to `naive_max` (it runs at about 1 GFLOP/s on a CPU adapter: 2048³ would take
/// minutes). Returns one JSON row per measurement.
pub async fn run(
    ctx: &Context,
    sizes: &[usize],
    layouts: &[&str],
    repeats: usize,
    naive_max: usize,
) -> Result<serde_json::Value> {
    let auto: Vec<String> = [DType::F32, DType::F16]
        .iter()
        .filter_map(|&d| gemm::choose(ctx, MatmulImpl::Auto, d).ok().map(|(k, _)| format!("{d}: {k:?}")))
        .collect();
    let mut rows = Vec::new();
    for &n in sizes {
        let a = HostData::F32(values(1, n * n));
        let b32 = values(2, n * n);
        let b16: Vec<half::f16> = b32.iter().map(|&x| half::f16::from_f32(x)).collect();
        let mut naive_gflops = std::collections::HashMap::new();
        for &layout in layouts {
            for (label, imp, dtype) in kernels(ctx) {
                if imp == MatmulImpl::Naive && n > naive_max {
                    continue;
                }
                let mut g = Graph::new();
                let x = g.input("a", &[n, n], DType::F32)?;
                let w = if dtype == DType::F16 {
                    g.weight("b", &[n, n], b16.clone())?
                } else {
                    g.weight("b", &[n, n], b32.clone())?
                };
                let y = g.matmul_with(x, w, MatmulOptions { trans_b: layout == "nt", imp, ..Default::default() })?;
                g.output(y)?;
                let mut exe = GpuExecutor::new(ctx, &g)?;
                exe.set_input_host("a", &a)?;
                let t = time(ctx, &mut exe, repeats).await?;
                let gflops = 2.0 * (n as f64).powi(3) / (t.us() * 1e-6) / 1e9;
                if imp == MatmulImpl::Naive {
                    naive_gflops.insert(layout, gflops);
                }
                rows.push(serde_json::json!({
                    "size": n, "layout": layout, "kernel": label, "b": dtype.to_string(),
                    "ms": t.us() / 1e3, "gpu_timestamps": t.gpu_us.is_some(), "gflops": gflops,
                    "vs_naive": naive_gflops.get(layout).map(|base| gflops / base),
                }));
            }
        }
    }
    Ok(serde_json::json!({
        "bench": "gemm", "adapter": ctx.adapter().one_line(), "repeats": repeats, "auto": auto, "results": rows,
    }))
}

/// The results of `run` as a table, one line per measurement.
pub fn table(v: &serde_json::Value) -> String {
    let mut s = format!(
        "gemm on {} (median of {} runs; Auto picks {})\n",
        v["adapter"].as_str().unwrap_or("?"),
        v["repeats"],
        v["auto"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    s.push_str(&format!(
        "{:>6} {:>6} {:>9} {:>4} {:>11} {:>9} {:>9}\n",
        "size", "layout", "kernel", "b", "ms", "GFLOP/s", "vs naive"
    ));
    for r in v["results"].as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
        let vs = r["vs_naive"].as_f64().map(|x| format!("{x:.1}x")).unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:>6} {:>6} {:>9} {:>4} {:>11.2} {:>9.2} {:>9}\n",
            r["size"],
            r["layout"].as_str().unwrap_or("?"),
            r["kernel"].as_str().unwrap_or("?"),
            r["b"].as_str().unwrap_or("?"),
            r["ms"].as_f64().unwrap_or(f64::NAN),
            r["gflops"].as_f64().unwrap_or(f64::NAN),
            vs
        ));
    }
    s
}
