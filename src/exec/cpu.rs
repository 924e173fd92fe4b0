//! Runs a plan on the CPU references: the oracle for whole graphs.

use crate::cpu;
use crate::error::{Error, Result};
use crate::graph::plan::Plan;
use crate::graph::RUNTIME_SLOTS;
use crate::graph::{Graph, NodeId, NodeKind};
use crate::tensor::{numel, DType, HostData};

/// Runs a graph on the CPU, keeping every node's value for inspection.
pub struct CpuExecutor<'g> {
    graph: &'g Graph,
    order: Vec<NodeId>,
    values: Vec<Option<HostData>>,
    runtime: [u32; RUNTIME_SLOTS],
}

fn zeros(dtype: DType, n: usize) -> HostData {
    match dtype {
        DType::F32 => HostData::F32(vec![0.0; n]),
        DType::F16 => HostData::F16(vec![half::f16::ZERO; n]),
        DType::U32 => HostData::U32(vec![0; n]),
        DType::Q8_0 | DType::Q4_1 => HostData::Quant { dtype, len: n, bytes: vec![0; dtype.bytes_for(n)] },
    }
}

impl<'g> CpuExecutor<'g> {
    pub fn new(graph: &'g Graph) -> Self {
        Self::with_plan(graph, &Plan::new(graph))
    }

    pub fn with_plan(graph: &'g Graph, plan: &Plan) -> Self {
        let values = graph
            .nodes()
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Weight { data, .. } => Some((**data).clone()),
                NodeKind::State { .. } => Some(zeros(n.dtype, numel(&n.shape))),
                _ => None,
            })
            .collect();
        Self { graph, order: plan.order.clone(), values, runtime: [0; RUNTIME_SLOTS] }
    }

    pub fn set_input(&mut self, name: &str, data: &HostData) -> Result<()> {
        let Some((_, id)) = self.graph.inputs().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = self.graph.inputs().map(|(n, _)| n).collect();
            return Err(Error::UnknownInput { name: name.into(), known: known.join(", ") });
        };
        let node = self.graph.node(id);
        if data.dtype() != node.dtype {
            return Err(Error::DType {
                what: format!("graph input '{name}'"),
                expected: node.dtype.to_string(),
                got: data.dtype().to_string(),
            });
        }
        if data.len() != numel(&node.shape) {
            return Err(Error::InputSize {
                name: name.into(),
                shape: node.shape.clone(),
                expected: numel(&node.shape),
                got: data.len(),
            });
        }
        self.values[id.0] = Some(data.clone());
        Ok(())
    }

    /// Zeroes the state named `name`, as `GpuExecutor::clear_state` does.
    pub fn clear_state(&mut self, name: &str) -> Result<()> {
        let found = self.graph.nodes().iter().position(|n| matches!(&n.kind, NodeKind::State { name: m } if m == name));
        let Some(i) = found else {
            return Err(Error::Usage(format!("graph has no state named '{name}'")));
        };
        let n = self.graph.node(NodeId(i));
        self.values[i] = Some(zeros(n.dtype, numel(&n.shape)));
        Ok(())
    }

    pub fn set_runtime_u32(&mut self, slot: u32, value: u32) -> Result<()> {
        let s = slot as usize;
        if s >= RUNTIME_SLOTS {
            return Err(Error::RuntimeSlot { slot: s, max: RUNTIME_SLOTS });
        }
        self.runtime[s] = value;
        Ok(())
    }

    pub fn set_runtime_f32(&mut self, slot: u32, value: f32) -> Result<()> {
        self.set_runtime_u32(slot, value.to_bits())
    }

    pub fn run(&mut self) -> Result<()> {
        if let Some((name, _)) = self.graph.inputs().find(|(_, id)| self.values[id.0].is_none()) {
            return Err(Error::MissingInput { name: name.into() });
        }
        for &id in &self.order {
            let node = self.graph.node(id);
            let Some(op) = node.op() else { continue };
            let (out, writes) = {
                let ins: Vec<&HostData> = node.inputs.iter().map(|x| self.value(*x)).collect::<Result<_>>()?;
                let shapes: Vec<&[usize]> = node.inputs.iter().map(|x| self.graph.node(*x).shape.as_slice()).collect();
                let out = cpu::eval(op, &ins, &shapes, &node.shape, &self.runtime)?;
                (out, cpu::state_writes(op, &ins, &shapes, &node.shape, &self.runtime)?)
            };
            // States the op writes besides its value (KV caches): later readers see them.
            for (i, data) in writes {
                let root = self.graph.storage_root(node.inputs[i]);
                self.values[root.0] = Some(data);
            }
            if node.is_in_place() {
                // The state itself changes, so later runs (and readers of the state) see it.
                let root = self.graph.storage_root(id);
                self.values[root.0] = Some(out.clone());
            }
            self.values[id.0] = Some(out);
        }
        Ok(())
    }

    /// A node's value after `run` (any node: the CPU executor keeps them all).
    pub fn value(&self, mut id: NodeId) -> Result<&HostData> {
        // Views hold their input's elements (the flat data is the same; only the shape differs).
        while self.graph.nodes().get(id.0).is_some_and(|n| n.is_view()) {
            id = self.graph.node(id).inputs[0];
        }
        self.values.get(id.0).and_then(|v| v.as_ref()).ok_or_else(|| {
            Error::Usage(format!("node #{} has no value: run() first, or it is not needed by any output", id.0))
        })
    }
}
