//! Executors: the GPU one that encodes a plan, and the CPU one that runs the references.

mod cpu;
mod gpu;

pub use cpu::CpuExecutor;
pub use gpu::{GpuExecutor, Profile, ProfileRow, SharedBuffers};

use crate::error::Result;
use crate::gpu::Context;
use crate::graph::plan::{Plan, PlanOptions};
use crate::graph::{Graph, NodeId};
use crate::tensor::HostData;

/// Runs a graph once on the GPU and returns its outputs, in `graph.outputs()` order.
///
/// ```no_run
/// # async fn demo() -> webformer::Result<()> {
/// use webformer::{Context, DType, Graph, HostData};
/// let ctx = Context::new().await?;
/// let mut g = Graph::new();
/// let a = g.input("a", &[2, 3], DType::F32)?;
/// let b = g.weight("b", &[3, 2], vec![1.0f32; 6])?;
/// let c = g.matmul(a, b)?;
/// g.output(c)?;
/// let out = webformer::exec::run_once(&ctx, &g, &[("a", vec![1.0f32, 2., 3., 4., 5., 6.].into())]).await?;
/// assert_eq!(out[0], HostData::F32(vec![6.0, 6.0, 15.0, 15.0]));
/// # Ok(()) }
/// ```
pub async fn run_once(ctx: &Context, graph: &Graph, inputs: &[(&str, HostData)]) -> Result<Vec<HostData>> {
    let mut exe = GpuExecutor::new(ctx, graph)?;
    for (name, data) in inputs {
        exe.set_input_host(name, data)?;
    }
    exe.run()?;
    let mut out = Vec::new();
    for id in graph.outputs() {
        out.push(exe.read(*id).await?);
    }
    Ok(out)
}

/// The first node whose GPU value differs from the CPU reference beyond tolerance.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub node: NodeId,
    pub label: String,
    /// The first element that differs (with lengths that differ: the shorter length).
    pub index: usize,
    /// The values there (NaN where one side has no element `index`).
    pub gpu: f32,
    pub cpu: f32,
    /// Elements on each side: (GPU, CPU); equal unless a kernel's output has the wrong size.
    pub lengths: (usize, usize),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lengths.0 != self.lengths.1 {
            return write!(
                f,
                "node #{} ({}) has {} elements on the GPU but {} on the CPU",
                self.node.0, self.label, self.lengths.0, self.lengths.1
            );
        }
        write!(
            f,
            "node #{} ({}) differs first at element {}: GPU {} vs CPU {}",
            self.node.0, self.label, self.index, self.gpu, self.cpu
        )
    }
}

/// The first element where |gpu - cpu| > atol + rtol * |cpu| (NaN on either side differs),
/// or the shorter length when the lengths differ.
fn first_difference(gpu: &[f32], cpu: &[f32], rtol: f32, atol: f32) -> Option<usize> {
    let bad = gpu.iter().zip(cpu).position(|(g, c)| {
        let diff = (g - c).abs();
        diff.is_nan() || diff > atol + rtol * c.abs()
    });
    bad.or((gpu.len() != cpu.len()).then_some(gpu.len().min(cpu.len())))
}

/// Debugging mode: runs `graph` on GPU (every node kept, outputs poisoned with NaN first so
/// that elements a kernel leaves unwritten differ) and on the CPU references, and returns the
/// first node, in execution order, where |gpu - cpu| > atol + rtol * |cpu| or the lengths differ.
pub async fn compare(
    ctx: &Context,
    graph: &Graph,
    inputs: &[(&str, HostData)],
    runtime: &[(u32, u32)],
    rtol: f32,
    atol: f32,
) -> Result<Option<Mismatch>> {
    let plan = Plan::with_options(graph, PlanOptions { reuse: false });
    let mut gpu = GpuExecutor::with_plan(ctx, graph, &plan)?;
    let mut cpu = CpuExecutor::with_plan(graph, &plan);
    gpu.poison_outputs();
    for (name, data) in inputs {
        gpu.set_input_host(name, data)?;
        cpu.set_input(name, data)?;
    }
    for &(slot, v) in runtime {
        gpu.set_runtime_u32(slot, v)?;
        cpu.set_runtime_u32(slot, v)?;
    }
    gpu.run()?;
    cpu.run()?;
    for &id in &plan.order {
        let g = gpu.read(id).await?.to_f32();
        let c = cpu.value(id)?.to_f32();
        if let Some(index) = first_difference(&g, &c, rtol, atol) {
            let at = |v: &[f32]| v.get(index).copied().unwrap_or(f32::NAN);
            return Ok(Some(Mismatch {
                node: id,
                label: graph.node(id).label(),
                index,
                gpu: at(&g),
                cpu: at(&c),
                lengths: (g.len(), c.len()),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::first_difference;

    #[test]
    fn differences_include_nan_and_lengths() {
        assert_eq!(first_difference(&[1.0, 2.0], &[1.0, 2.0], 0.0, 0.0), None);
        assert_eq!(first_difference(&[1.0, 2.5], &[1.0, 2.0], 0.0, 0.1), Some(1));
        assert_eq!(first_difference(&[1.0, 2.05], &[1.0, 2.0], 0.0, 0.1), None);
        assert_eq!(first_difference(&[f32::NAN, 2.0], &[1.0, 2.0], 1.0, 1.0), Some(0));
        assert_eq!(first_difference(&[1.0, 2.0], &[1.0, f32::NAN], 1.0, 1.0), Some(1));
        // A kernel that wrote too few or too many elements differs where the shorter one ends.
        assert_eq!(first_difference(&[1.0], &[1.0, 2.0], 1.0, 1.0), Some(1));
        assert_eq!(first_difference(&[1.0, 2.0, 3.0], &[1.0, 2.0], 1.0, 1.0), Some(2));
        assert_eq!(first_difference(&[], &[], 0.0, 0.0), None);
    }
}
