//! Encodes a plan for the GPU. Everything is created once here (buffers, params, pipelines,
//! bind groups); `run` only writes the runtime slots (if changed) and the inputs, then records
//! one compute pass and submits it.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::pipeline::{CachedPipeline, FIRST_IO_BINDING, PARAMS_SLOT};
use crate::gpu::profile::Timer;
use crate::gpu::{buffer, Context};
use crate::graph::plan::{Plan, Storage};
use crate::graph::RUNTIME_SLOTS;
use crate::graph::{Graph, NodeId, NodeKind};
use crate::kernels::{self, Lowered, RuntimeBound, Slot};
use crate::tensor::{numel, DType, Element, HostData};

struct Step {
    node: NodeId,
    pipeline: Arc<CachedPipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// What the executor keeps of each node (the graph itself, with its weights, is not kept).
struct NodeInfo {
    label: String,
    shape: Vec<usize>,
    dtype: DType,
    buffer: Option<usize>,
    readable: bool,
    /// Written by its own kernel into a buffer of its own (not a leaf, not in place).
    computed: bool,
}

/// A bound checked on the host before each run, as the node's lowering declared it.
struct RowWrite {
    node: NodeId,
    bound: RuntimeBound,
}

/// Runs one graph's plan on the GPU, as many times as wanted.
///
/// ```no_run
/// # async fn demo(ctx: &webformer::Context, g: &webformer::Graph, y: webformer::NodeId) -> webformer::Result<()> {
/// let mut exe = webformer::GpuExecutor::new(ctx, g)?;
/// exe.set_input("x", &[1.0f32, 2.0, 3.0])?;
/// exe.run()?;
/// let y = exe.read(y).await?;
/// # Ok(()) }
/// ```
pub struct GpuExecutor {
    ctx: Context,
    nodes: Vec<NodeInfo>,
    buffers: Vec<wgpu::Buffer>,
    steps: Vec<Step>,
    inputs: Vec<(String, NodeId, bool)>,
    states: Vec<(String, NodeId)>,
    runtime: [u32; RUNTIME_SLOTS],
    runtime_buf: wgpu::Buffer,
    runtime_dirty: bool,
    row_writes: Vec<RowWrite>,
    /// Each node's inputs, for resolving `Slot::Input`.
    node_inputs: Vec<Vec<NodeId>>,
    staging: HashMap<usize, wgpu::Buffer>,
    plan: Plan,
}

impl GpuExecutor {
    /// Plans `graph` with buffer reuse and prepares it to run.
    pub fn new(ctx: &Context, graph: &Graph) -> Result<Self> {
        Self::with_plan(ctx, graph, &Plan::new(graph))
    }

    /// Prepares `graph` to run under an existing plan.
    pub fn with_plan(ctx: &Context, graph: &Graph, plan: &Plan) -> Result<Self> {
        Self::with_shared(ctx, graph, plan, &mut SharedBuffers::new())
    }

    /// Prepares `graph`, taking weights and state that `shared` already holds (by name) and
    /// adding the ones it makes, so several graphs of one model share one copy.
    pub fn with_shared(ctx: &Context, graph: &Graph, plan: &Plan, shared: &mut SharedBuffers) -> Result<Self> {
        let lowered = lower_all(ctx, graph, plan)?;
        // Kernels that asked for scratch get it as short-lived pool tenants of the plan.
        let scratch: Vec<Vec<u64>> = lowered.iter().map(|(_, l)| l.scratch.clone()).collect();
        let plan = &if scratch.iter().any(|s| !s.is_empty()) {
            Plan::with_scratch(graph, plan.options, &scratch)
        } else {
            plan.clone()
        };
        let (buffers, node_buffer) = allocate(ctx, graph, plan, shared)?;
        let nodes = graph
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| NodeInfo {
                label: n.label(),
                shape: n.shape.clone(),
                dtype: n.dtype,
                buffer: node_buffer[i],
                readable: plan.storage[graph.storage_root(NodeId(i)).0] == Some(Storage::Pinned),
                computed: n.op().is_some() && !n.aliases_input(),
            })
            .collect();
        let runtime_buf = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webformer runtime"),
            size: (RUNTIME_SLOTS * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut exe = Self {
            ctx: ctx.clone(),
            nodes,
            buffers,
            steps: Vec::new(),
            inputs: graph.inputs().map(|(n, id)| (n.to_string(), id, false)).collect(),
            states: graph
                .nodes()
                .iter()
                .enumerate()
                .filter_map(|(i, n)| match &n.kind {
                    NodeKind::State { name } => Some((name.clone(), NodeId(i))),
                    _ => None,
                })
                .collect(),
            runtime: [0; RUNTIME_SLOTS],
            runtime_buf,
            runtime_dirty: true,
            row_writes: Vec::new(),
            node_inputs: graph.nodes().iter().map(|n| n.inputs.clone()).collect(),
            staging: HashMap::new(),
            plan: plan.clone(),
        };
        exe.build_steps(&lowered)?;
        ctx.check_errors("preparing the graph")?;
        Ok(exe)
    }

    /// Params, pipelines and bind groups of every dispatch (each its own 256-byte params slot).
    fn build_steps(&mut self, lowered: &[(NodeId, Lowered)]) -> Result<()> {
        let ctx = self.ctx.clone();
        let count: usize = lowered.iter().map(|(_, l)| l.dispatches.len()).sum();
        let params_buf = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webformer params"),
            size: PARAMS_SLOT * count.max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut params = vec![0u8; PARAMS_SLOT as usize * count];
        for (step, (id, low)) in lowered.iter().enumerate() {
            for d in &low.dispatches {
                let slot = self.steps.len();
                params[slot * PARAMS_SLOT as usize..][..d.params.len()].copy_from_slice(&d.params);
                let pipeline = ctx.pipelines.get(&ctx, d.key)?;
                let mut entries = vec![
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params_buf,
                            offset: slot as u64 * PARAMS_SLOT,
                            size: wgpu::BufferSize::new(PARAMS_SLOT),
                        }),
                    },
                    wgpu::BindGroupEntry { binding: 1, resource: self.runtime_buf.as_entire_binding() },
                ];
                for (i, s) in d.writes.iter().chain(&d.reads).enumerate() {
                    let b = self.slot_buffer(*id, step, *s)?;
                    entries.push(wgpu::BindGroupEntry {
                        binding: FIRST_IO_BINDING + i as u32,
                        resource: self.buffers[b].as_entire_binding(),
                    });
                }
                let label = d.key.entry_point();
                let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(label),
                    layout: &pipeline.layout,
                    entries: &entries,
                });
                self.steps.push(Step { node: *id, pipeline, bind_group, workgroups: d.workgroups });
            }
            for b in &low.bounds {
                self.row_writes.push(RowWrite { node: *id, bound: *b });
            }
        }
        if !params.is_empty() {
            ctx.queue.write_buffer(&params_buf, 0, &params);
        }
        Ok(())
    }

    /// The buffer a dispatch binding refers to.
    fn slot_buffer(&self, id: NodeId, step: usize, slot: Slot) -> Result<usize> {
        match slot {
            Slot::Output => self.buffer_of(id),
            Slot::Input(i) => self.buffer_of(self.node_inputs[id.0][i]),
            Slot::Scratch(k) => {
                let pool = self.plan.scratch.get(step).and_then(|s| s.get(k)).copied();
                pool.ok_or_else(|| Error::Usage(format!("node #{}: no scratch buffer {k} in this plan", id.0)))
            }
        }
    }

    fn buffer_of(&self, id: NodeId) -> Result<usize> {
        self.nodes[id.0].buffer.ok_or_else(|| Error::Usage(format!("node #{} has no buffer in this plan", id.0)))
    }

    /// The plan this executor runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Sets an input's value for the next runs (it stays until set again).
    pub fn set_input<T: Element>(&mut self, name: &str, data: &[T]) -> Result<()> {
        self.write_input(name, T::DTYPE, bytemuck::cast_slice(data), data.len())
    }

    /// Sets an input from tagged host data.
    pub fn set_input_host(&mut self, name: &str, data: &HostData) -> Result<()> {
        self.write_input(name, data.dtype(), data.as_bytes(), data.len())
    }

    fn write_input(&mut self, name: &str, dtype: DType, bytes: &[u8], len: usize) -> Result<()> {
        let Some(k) = self.inputs.iter().position(|(n, _, _)| n == name) else {
            let known: Vec<&str> = self.inputs.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(Error::UnknownInput { name: name.into(), known: known.join(", ") });
        };
        let id = self.inputs[k].1;
        let node = &self.nodes[id.0];
        if node.dtype != dtype {
            return Err(Error::DType {
                what: format!("graph input '{name}'"),
                expected: node.dtype.to_string(),
                got: dtype.to_string(),
            });
        }
        let expected = node.shape.iter().product();
        if len != expected {
            return Err(Error::InputSize { name: name.into(), shape: node.shape.clone(), expected, got: len });
        }
        if let Some(b) = node.buffer {
            buffer::upload(&self.ctx, &self.buffers[b], bytes);
        }
        self.inputs[k].2 = true;
        Ok(())
    }

    /// Fills every readable computed node (outputs, or all nodes of a plan without reuse) with
    /// NaN bits, so that elements a kernel fails to write show up in comparisons. A debugging
    /// and testing aid; a normal run overwrites everything it computes.
    pub fn poison_outputs(&mut self) {
        for n in &self.nodes {
            if let (Some(b), true, true) = (n.buffer, n.readable, n.computed) {
                let bytes = buffer::padded(n.dtype.bytes_for(n.shape.iter().product::<usize>()) as u64);
                self.ctx.queue.write_buffer(&self.buffers[b], 0, &vec![0xffu8; bytes as usize]);
            }
        }
    }

    /// Zeroes the state named `name` (e.g. a KV cache when a new conversation starts), as its
    /// value was before the first run. Queued on the GPU after the runs submitted so far.
    pub fn clear_state(&mut self, name: &str) -> Result<()> {
        let Some((_, id)) = self.states.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = self.states.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::Usage(format!(
                "graph has no state named '{name}'; its states are: {}",
                known.join(", ")
            )));
        };
        // A state no step reads or writes has no buffer in this plan: nothing to clear.
        if let Some(b) = self.nodes[id.0].buffer {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("webformer clear state") });
            enc.clear_buffer(&self.buffers[b], 0, None);
            self.ctx.queue.submit([enc.finish()]);
        }
        self.ctx.check_errors(&format!("clearing state '{name}'"))
    }

    /// Sets runtime slot `slot` (u32) for the next runs.
    pub fn set_runtime_u32(&mut self, slot: u32, value: u32) -> Result<()> {
        let s = slot as usize;
        if s >= RUNTIME_SLOTS {
            return Err(Error::RuntimeSlot { slot: s, max: RUNTIME_SLOTS });
        }
        if self.runtime[s] != value {
            self.runtime[s] = value;
            self.runtime_dirty = true;
        }
        Ok(())
    }

    /// Sets runtime slot `slot` to an f32 (e.g. a `Scalar::Runtime` factor).
    pub fn set_runtime_f32(&mut self, slot: u32, value: f32) -> Result<()> {
        self.set_runtime_u32(slot, value.to_bits())
    }

    fn prepare(&mut self) -> Result<()> {
        if let Some((name, _, _)) = self.inputs.iter().find(|(_, _, set)| !set) {
            return Err(Error::MissingInput { name: name.clone() });
        }
        for w in &self.row_writes {
            let RuntimeBound { slot, rows, capacity } = w.bound;
            let start = self.runtime[slot as usize] as usize;
            if start + rows > capacity {
                return Err(Error::Usage(format!(
                    "node #{} ({}): rows {start}..{} do not fit the state's {capacity} rows (runtime slot {slot} = {start})",
                    w.node.0,
                    self.nodes[w.node.0].label,
                    start + rows,
                )));
            }
        }
        if self.runtime_dirty {
            self.ctx.queue.write_buffer(&self.runtime_buf, 0, bytemuck::cast_slice(&self.runtime));
            self.runtime_dirty = false;
        }
        Ok(())
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step) {
        pass.set_pipeline(&step.pipeline.pipeline);
        pass.set_bind_group(0, &step.bind_group, &[]);
        let [x, y, z] = step.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    /// Runs the plan: one encoder, one compute pass, one submit. Does not wait for the GPU.
    pub fn run(&mut self) -> Result<()> {
        self.ctx.check_lost("running the graph")?;
        self.prepare()?;
        self.submit_one_pass(None)?;
        self.ctx.check_errors("running the graph")
    }

    /// Runs the plan as `run` does, with timestamps around the single pass, and returns the
    /// pass's GPU time in nanoseconds (the benchmark figure: no per-node pass splitting).
    pub async fn run_timed(&mut self) -> Result<f64> {
        self.prepare()?;
        let timer = Timer::new(&self.ctx, 1)?;
        self.submit_one_pass(Some(&timer))?;
        self.ctx.check_errors("running the graph with timing")?;
        Ok(timer.read_ns(&self.ctx).await?[0])
    }

    fn submit_one_pass(&self, timer: Option<&Timer>) -> Result<()> {
        let mut enc =
            self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("webformer run") });
        {
            let timestamp_writes = timer.map(|t| t.writes(0));
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("webformer"), timestamp_writes });
            for step in &self.steps {
                self.record(&mut pass, step);
            }
        }
        if let Some(t) = timer {
            t.resolve(&mut enc);
        }
        self.ctx.queue.submit([enc.finish()]);
        Ok(())
    }

    /// Number of kernel launches per run.
    pub fn steps(&self) -> usize {
        self.steps.len()
    }

    /// Runs the plan with a timestamp pair around every node (one pass per node, which is how
    /// WebGPU allows timing without timestamps inside passes) and returns the times.
    pub async fn run_profiled(&mut self) -> Result<Profile> {
        self.prepare()?;
        let timer = Timer::new(&self.ctx, self.steps.len() as u32)?;
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("webformer profiled run") });
        for (i, step) in self.steps.iter().enumerate() {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("webformer"),
                timestamp_writes: Some(timer.writes(i as u32)),
            });
            self.record(&mut pass, step);
        }
        timer.resolve(&mut enc);
        self.ctx.queue.submit([enc.finish()]);
        self.ctx.check_errors("running the graph with timing")?;
        let ns = timer.read_ns(&self.ctx).await?;
        let rows = self
            .steps
            .iter()
            .zip(ns)
            .map(|(s, ns)| {
                let n = &self.nodes[s.node.0];
                ProfileRow { node: s.node.0, op: n.label.clone(), shape: n.shape.clone(), ns }
            })
            .collect();
        Ok(Profile { rows })
    }

    /// Reads a node's value after a run. Readable: inputs, weights, state, outputs, and every
    /// node of a plan built without reuse. Staging buffers are made once per node and reused.
    pub async fn read(&mut self, id: NodeId) -> Result<HostData> {
        self.ctx.check_lost("reading a result")?;
        let node = self.nodes.get(id.0).ok_or(Error::UnknownNode { op: "read".into(), id: id.0 })?;
        let (Some(b), true) = (node.buffer, node.readable) else {
            return Err(Error::Usage(format!(
                "node #{} ({}) is an intermediate whose buffer is shared with others; mark it with Graph::output, or plan with PlanOptions {{ reuse: false }}",
                id.0, node.label
            )));
        };
        if node.dtype.is_quantized() {
            return Err(Error::Usage(format!(
                "node #{} ({}) holds quantized blocks in a GPU layout; read f32 nodes instead",
                id.0, node.label
            )));
        }
        let len = node.shape.iter().product::<usize>();
        let bytes = node.dtype.bytes_for(len) as u64;
        let dtype = node.dtype;
        let what = node.label.clone();
        if !self.staging.contains_key(&id.0) {
            self.staging.insert(id.0, buffer::staging(&self.ctx, bytes));
        }
        let staging = &self.staging[&id.0];
        let data = buffer::read_via(&self.ctx, &self.buffers[b], staging, bytes, &what).await?;
        Ok(HostData::from_bytes(dtype, len, &data))
    }
}

/// Lowers every step of the plan (views launch nothing and are not steps).
fn lower_all(ctx: &Context, graph: &Graph, plan: &Plan) -> Result<Vec<(NodeId, Lowered)>> {
    let mut out = Vec::with_capacity(plan.order.len());
    for &id in &plan.order {
        let node = graph.node(id);
        let op = node.op().ok_or_else(|| Error::Usage(format!("plan step #{} is not an op", id.0)))?;
        let operands: Vec<kernels::Operand> = node
            .inputs
            .iter()
            .map(|x| kernels::Operand { shape: &graph.node(*x).shape, dtype: graph.node(*x).dtype })
            .collect();
        let low = kernels::lower(ctx, op, &operands, &node.shape).map_err(|e| at_node(e, id, &node.label()))?;
        out.push((id, low));
    }
    Ok(out)
}

/// Prefixes a lowering error with the node it came from.
fn at_node(e: Error, id: NodeId, label: &str) -> Error {
    match e {
        Error::Usage(m) => Error::Usage(format!("node #{} ({label}): {m}", id.0)),
        other => other,
    }
}

/// Weight and state buffers by name, shared by the executors of several graphs over one model
/// (a prefill graph and a decode graph read the same weights and write the same KV cache).
/// Pass the same `SharedBuffers` to `GpuExecutor::with_shared` for each of them.
#[derive(Clone, Default)]
pub struct SharedBuffers {
    map: HashMap<String, (wgpu::Buffer, u64)>,
}

impl SharedBuffers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held (each buffer counted once).
    pub fn bytes(&self) -> u64 {
        self.map.values().map(|(_, b)| *b).sum()
    }

    /// The buffer for leaf `name` of `bytes`, made by `make` the first time it is asked for.
    fn get_or_make(
        &mut self,
        name: &str,
        bytes: u64,
        make: impl FnOnce() -> Result<wgpu::Buffer>,
    ) -> Result<wgpu::Buffer> {
        if let Some((b, size)) = self.map.get(name) {
            if *size != bytes {
                return Err(Error::Usage(format!(
                    "shared tensor '{name}' is {size} bytes in one graph and {bytes} in another"
                )));
            }
            return Ok(b.clone());
        }
        let b = make()?;
        self.map.insert(name.to_string(), (b.clone(), bytes));
        Ok(b)
    }
}

/// Creates pinned and pool buffers (weights and state through `shared`); returns them and each
/// node's buffer index.
fn allocate(
    ctx: &Context,
    graph: &Graph,
    plan: &Plan,
    shared: &mut SharedBuffers,
) -> Result<(Vec<wgpu::Buffer>, Vec<Option<usize>>)> {
    let mut buffers = Vec::new();
    for (p, &bytes) in plan.pools.iter().enumerate() {
        buffers.push(buffer::storage(ctx, bytes, &format!("pool {p}"))?);
    }
    let mut node_buffer = vec![None; graph.nodes().len()];
    for (i, n) in graph.nodes().iter().enumerate() {
        if plan.storage[i] != Some(Storage::Pinned) {
            if let Some(Storage::Pool(p)) = plan.storage[i] {
                node_buffer[i] = Some(p);
            }
            continue;
        }
        let label = n.label();
        let b = match &n.kind {
            NodeKind::Weight { name, data } => {
                // Kernels may want weights in their own layout (quantized blocks repacked for
                // wide loads); everything else uploads as it is.
                let bytes = kernels::gpu_layout(data);
                shared.get_or_make(name, bytes.len() as u64, || {
                    let b = buffer::storage(ctx, bytes.len() as u64, &label)?;
                    buffer::upload(ctx, &b, &bytes);
                    Ok(b)
                })?
            }
            NodeKind::State { name } => {
                let bytes = kernels::gpu_bytes(n.dtype, numel(&n.shape));
                shared.get_or_make(name, bytes, || buffer::storage(ctx, bytes, &label))?
            }
            _ => buffer::storage(ctx, kernels::gpu_bytes(n.dtype, numel(&n.shape)), &label)?,
        };
        buffers.push(b);
        node_buffer[i] = Some(buffers.len() - 1);
    }
    for i in 0..graph.nodes().len() {
        if let Some(Storage::Alias(root)) = plan.storage[i] {
            node_buffer[i] = node_buffer[root.0];
        }
    }
    Ok((buffers, node_buffer))
}

/// One timed node.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileRow {
    pub node: usize,
    pub op: String,
    pub shape: Vec<usize>,
    pub ns: f64,
}

/// Per-node GPU times of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub rows: Vec<ProfileRow>,
}

impl Profile {
    pub fn total_ns(&self) -> f64 {
        self.rows.iter().map(|r| r.ns).sum()
    }

    /// A table: node, op, shape, time, share of the total.
    pub fn table(&self) -> String {
        let total = self.total_ns().max(1e-9);
        let mut s = format!("{:<6} {:<14} {:<20} {:>12} {:>7}\n", "node", "op", "shape", "time (us)", "share");
        for r in &self.rows {
            s += &format!(
                "#{:<5} {:<14} {:<20} {:>12.2} {:>6.1}%\n",
                r.node,
                r.op,
                format!("{:?}", r.shape),
                r.ns / 1e3,
                100.0 * r.ns / total
            );
        }
        s += &format!("{:<42} {:>12.2} {:>6.1}%\n", "total", total / 1e3, 100.0);
        s
    }

    /// The rows as JSON, for tooling.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
