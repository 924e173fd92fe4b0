//! Execution plan: order, liveness and memory.
//!
//! Memory: every intermediate is assigned to a pool buffer; two intermediates share a buffer
//! only when their lifetimes (from the step that writes one to the last step that reads it)
//! do not overlap. Greedy by size, largest first: a buffer's size is that of its first
//! (largest) tenant, so every later tenant fits. Whole buffers are shared, never sub-ranges:
//! WebGPU forbids one buffer being bound read-only and writable in the same dispatch, which
//! offset-packing into one arena would need.
//! Inputs, weights, state and outputs are pinned: each has a buffer of its own for the plan's life.
//!
//! Scratch: a node whose kernels need temporary buffers (the partials of split-key attention,
//! the passes of a sort or an FFT) says so through its lowering; the executor hands those
//! sizes to `Plan::with_scratch`, and each scratch buffer becomes one more pool tenant living
//! for that node's step only. The plan never learns what the scratch is for.

use std::fmt::Write;

use super::{Graph, NodeId, NodeKind};

/// Where a node's value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A buffer of its own (inputs, weights, state, outputs).
    Pinned,
    /// Shared pool buffer `i`.
    Pool(usize),
    /// The buffer of another node (in-place updates write into their state's buffer).
    Alias(NodeId),
}

/// Plan-building choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Share buffers between intermediates whose lifetimes do not overlap. Turning it off
    /// pins every node, so each can be read after a run (the node-by-node debugging mode).
    pub reuse: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { reuse: true }
    }
}

/// The order to run nodes in and where each value lives.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Op nodes to run, in order. Nodes that no output or state update depends on are left out.
    pub order: Vec<NodeId>,
    /// Per node: its storage, or None if the plan does not need it.
    pub storage: Vec<Option<Storage>>,
    /// Per node: (first step, last step) during which its value must be intact; None if pinned.
    pub lifetime: Vec<Option<(usize, usize)>>,
    /// Byte size of each pool buffer.
    pub pools: Vec<u64>,
    /// Bytes of pinned buffers (inputs, weights, state, outputs).
    pub pinned_bytes: u64,
    /// Bytes of all intermediates, as if each had a buffer of its own.
    pub intermediate_bytes: u64,
    /// Per step: the pool buffers of its scratch (empty for most).
    pub scratch: Vec<Vec<usize>>,
    /// The choices this plan was made with.
    pub options: PlanOptions,
}

impl Plan {
    pub fn new(graph: &Graph) -> Self {
        Self::with_options(graph, PlanOptions::default())
    }

    pub fn with_options(graph: &Graph, options: PlanOptions) -> Self {
        Self::with_scratch(graph, options, &[])
    }

    /// A plan whose step `s` also has scratch buffers of `scratch[s]` bytes each (missing
    /// entries: none), which live during that step only and share pool buffers with everything
    /// else. Scratch is never readable after a run.
    pub fn with_scratch(graph: &Graph, options: PlanOptions, scratch: &[Vec<u64>]) -> Self {
        let nodes = graph.nodes();
        let live = needed(graph);
        // Views run nothing, so they are not steps.
        let order: Vec<NodeId> = (0..nodes.len())
            .filter(|&i| live[i] && nodes[i].op().is_some() && !nodes[i].is_view())
            .map(NodeId)
            .collect();
        // A value read through an output view must survive the run like the output itself.
        let output_roots: Vec<NodeId> = graph.outputs().iter().map(|o| graph.storage_root(*o)).collect();
        let mut step_of = vec![usize::MAX; nodes.len()];
        for (s, id) in order.iter().enumerate() {
            step_of[id.0] = s;
        }
        let mut storage = vec![None; nodes.len()];
        let mut lifetime = vec![None; nodes.len()];
        let mut pinned_bytes = 0;
        let mut intermediate_bytes = 0;
        for (i, n) in nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            let pinned = !matches!(n.kind, NodeKind::Op(_)) || output_roots.contains(&NodeId(i)) || !options.reuse;
            storage[i] = Some(if n.aliases_input() {
                Storage::Alias(graph.storage_root(NodeId(i)))
            } else if pinned {
                pinned_bytes += n.bytes();
                Storage::Pinned
            } else {
                intermediate_bytes += n.bytes();
                Storage::Pool(usize::MAX)
            });
        }
        // Lifetimes of pooled values: from their own step to the last step reading them,
        // directly or through a view.
        for id in &order {
            for x in &nodes[id.0].inputs {
                let r = graph.storage_root(*x);
                if storage[r.0] == Some(Storage::Pool(usize::MAX)) {
                    let (a, b) = lifetime[r.0].unwrap_or((step_of[r.0], step_of[r.0]));
                    lifetime[r.0] = Some((a, b.max(step_of[id.0])));
                }
            }
        }
        for i in 0..nodes.len() {
            if storage[i] == Some(Storage::Pool(usize::MAX)) && lifetime[i].is_none() {
                lifetime[i] = Some((step_of[i], step_of[i]));
            }
        }
        let mut tenants: Vec<Tenant> = (0..nodes.len())
            .filter(|&i| storage[i] == Some(Storage::Pool(usize::MAX)))
            .map(|i| Tenant { bytes: nodes[i].bytes(), life: lifetime[i].unwrap_or((0, 0)), of: Of::Node(i) })
            .collect();
        for (step, sizes) in scratch.iter().enumerate().take(order.len()) {
            for (k, &bytes) in sizes.iter().enumerate() {
                intermediate_bytes += bytes;
                tenants.push(Tenant { bytes, life: (step, step), of: Of::Scratch(step, k) });
            }
        }
        let mut scratch_pools: Vec<Vec<usize>> =
            (0..order.len()).map(|s| vec![usize::MAX; scratch.get(s).map_or(0, Vec::len)]).collect();
        let pools = assign_pools(&mut tenants, |t, p| match t {
            Of::Node(i) => storage[i] = Some(Storage::Pool(p)),
            Of::Scratch(s, k) => scratch_pools[s][k] = p,
        });
        Plan { order, storage, lifetime, pools, pinned_bytes, intermediate_bytes, scratch: scratch_pools, options }
    }

    /// Bytes the plan allocates for intermediates (the sum of pool buffers).
    pub fn pooled_bytes(&self) -> u64 {
        self.pools.iter().sum()
    }

    /// Bytes the plan allocates in all (pinned + pools).
    pub fn peak_bytes(&self) -> u64 {
        self.pinned_bytes + self.pooled_bytes()
    }

    /// A readable summary: each step with its storage, then the memory totals.
    pub fn dump(&self, graph: &Graph) -> String {
        let mut s = String::new();
        for (step, id) in self.order.iter().enumerate() {
            let n = graph.node(*id);
            let st = match self.storage[id.0] {
                Some(Storage::Pool(p)) => format!("pool {p}"),
                Some(Storage::Alias(r)) => format!("in the buffer of #{}", r.0),
                _ => "pinned".into(),
            };
            let _ = writeln!(s, "step {step:<4} #{:<4} {:<12} {:?} -> {st}", id.0, n.label(), n.shape);
        }
        let _ = writeln!(
            s,
            "memory: {} pinned + {} in {} pool buffers = {} bytes; intermediates alone would take {} (saved {})",
            self.pinned_bytes,
            self.pooled_bytes(),
            self.pools.len(),
            self.peak_bytes(),
            self.intermediate_bytes,
            self.intermediate_bytes.saturating_sub(self.pooled_bytes())
        );
        s
    }
}

/// Nodes that an output or an in-place state update (a state node's value, or a state an op
/// writes besides its own value) depends on.
fn needed(graph: &Graph) -> Vec<bool> {
    let nodes = graph.nodes();
    let mut live = vec![false; nodes.len()];
    let mut stack: Vec<NodeId> = graph.outputs().to_vec();
    let writes = |i: usize| nodes[i].is_in_place() || !nodes[i].state_writes().is_empty();
    stack.extend((0..nodes.len()).filter(|&i| writes(i)).map(NodeId));
    while let Some(id) = stack.pop() {
        if !live[id.0] {
            live[id.0] = true;
            stack.extend(nodes[id.0].inputs.iter().copied());
        }
    }
    live
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// What a pool tenant is: a node's value, or scratch buffer k of step s.
#[derive(Clone, Copy)]
enum Of {
    Node(usize),
    Scratch(usize, usize),
}

struct Tenant {
    bytes: u64,
    life: (usize, usize),
    of: Of,
}

/// Greedy by size: largest tenants first (ties in graph order), each into the first pool
/// buffer whose tenants are all dead while it lives; `place` records each choice.
fn assign_pools(tenants: &mut [Tenant], mut place: impl FnMut(Of, usize)) -> Vec<u64> {
    tenants.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    let mut pools: Vec<(u64, Vec<(usize, usize)>)> = Vec::new();
    for t in tenants.iter() {
        let slot = pools.iter().position(|(_, lives)| lives.iter().all(|l| !overlaps(*l, t.life)));
        let p = match slot {
            Some(p) => p,
            None => {
                pools.push((t.bytes, Vec::new()));
                pools.len() - 1
            }
        };
        pools[p].1.push(t.life);
        place(t.of, p);
    }
    pools.into_iter().map(|(bytes, _)| bytes).collect()
}
