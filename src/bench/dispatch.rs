//! Dispatch overhead: a chain of tiny elementwise nodes run as one plan.

use super::{time, values};
use crate::error::Result;
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{Graph, Scalar};
use crate::tensor::DType;

/// `nodes` alternating add/scale nodes over `elements` f32: the per-node cost of a launch.
pub async fn run(ctx: &Context, nodes: usize, elements: usize, repeats: usize) -> Result<serde_json::Value> {
    let mut g = Graph::new();
    let x = g.input("x", &[elements], DType::F32)?;
    let w = g.weight("w", &[elements], values(7, elements))?;
    let mut h = x;
    for i in 0..nodes {
        h = if i % 2 == 0 { g.add(h, w)? } else { g.scale(h, Scalar::Const(0.5))? };
    }
    g.output(h)?;
    let mut exe = GpuExecutor::new(ctx, &g)?;
    exe.set_input("x", &values(8, elements))?;
    let t = time(ctx, &mut exe, repeats).await?;
    let n = nodes.max(1) as f64;
    Ok(serde_json::json!({
        "bench": "dispatch", "adapter": ctx.adapter().one_line(), "nodes": nodes, "elements": elements,
        "repeats": repeats, "submit_us_per_node": t.submit_us / n, "wall_us_per_node": t.wall_us / n,
        "gpu_us_per_node": t.gpu_us.map(|g| g / n), "wall_us_per_run": t.wall_us, "gpu_us_per_run": t.gpu_us,
    }))
}
