//! Numerical guards: a NaN or an infinity that reaches a model's output (logits, hidden
//! states, embeddings) is an error naming the first graph node that produced one, never
//! tokens, text or JSON nulls.
//!
//! Weights are checked for non-finite values at load (`Weights::expect`), so a non-finite
//! output at run time comes from the arithmetic itself: an overflow (an f16 KV cache past
//! 65504, a huge activation) or a kernel fault. The output is checked on every run (one pass
//! over values that are read back anyway, or over the logits of the sampled row); only when it
//! fails is the graph run again with every node kept, to find where the first NaN or infinity
//! appeared. That search costs one readback per node, on the error path only.

use crate::error::{Error, Result};
use crate::exec::{GpuExecutor, SharedBuffers};
use crate::gpu::Context;
use crate::graph::plan::{Plan, PlanOptions};
use crate::graph::Graph;
use crate::tensor::{DType, HostData};

/// The index of the first NaN or infinity in `v`.
pub fn first_non_finite(v: &[f32]) -> Option<usize> {
    v.iter().position(|x| !x.is_finite())
}

/// Runs `graph` again over the same shared weights and state, with every node kept (a plan
/// without buffer reuse), the same `inputs` and runtime slot values, and describes the first
/// node in execution order whose value holds a NaN or an infinity ("node #12 (rms_norm
/// [1, 576]) has NaN at element 3"), or says that none did on the second run.
///
/// State written by the graph (a KV cache row) is written again with the same values, so the
/// re-run leaves it as the first run did.
pub async fn locate(
    ctx: &Context,
    graph: &Graph,
    shared: &mut SharedBuffers,
    inputs: &[(&str, HostData)],
    runtime: &[(u32, u32)],
) -> Result<String> {
    let plan = Plan::with_options(graph, PlanOptions { reuse: false });
    let mut exe = GpuExecutor::with_shared(ctx, graph, &plan, shared)?;
    for (name, data) in inputs {
        exe.set_input_host(name, data)?;
    }
    for &(slot, v) in runtime {
        exe.set_runtime_u32(slot, v)?;
    }
    exe.run()?;
    for &id in &plan.order {
        let node = graph.node(id);
        if matches!(node.dtype, DType::U32) || node.dtype.is_quantized() {
            continue; // integers and quantized blocks hold no NaN
        }
        let values = exe.read(id).await?.to_f32();
        if let Some(i) = first_non_finite(&values) {
            return Ok(format!(
                "node #{} ({} {:?}) is the first to have {} at element {i}",
                id.0,
                node.label(),
                node.shape,
                values[i]
            ));
        }
    }
    Ok("no node held one when the graph was run again, so the GPU computed differently the second time".into())
}

/// `Ok` when `values` are all finite; else an `Error::NonFinite` about `what`, naming the
/// first node that produced a NaN or an infinity (found by `locate`).
pub async fn check_output(
    values: &[f32],
    what: &str,
    ctx: &Context,
    graph: &Graph,
    shared: &mut SharedBuffers,
    inputs: &[(&str, HostData)],
    runtime: &[(u32, u32)],
) -> Result<()> {
    let Some(i) = first_non_finite(values) else { return Ok(()) };
    let first = format!("{} at element {i}", values[i]);
    let detail = match locate(ctx, graph, shared, inputs, runtime).await {
        Ok(found) => format!("{first}; {found}"),
        Err(e) => format!("{first}; locating its source failed: {e}"),
    };
    Err(Error::NonFinite { what: what.into(), detail })
}
