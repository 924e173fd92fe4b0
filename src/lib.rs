//! # webformer
//!
//! A portable GPU compute engine for transformers: WGSL compute shaders behind a graph
//! executor, running natively through wgpu (Vulkan, Metal, DX12) and in browsers on WebGPU.
//!
//! Models build a [`Graph`]; a [`Plan`] orders it and shares memory between intermediates;
//! a [`GpuExecutor`] records the whole plan into one compute pass and replays it; the
//! [`CpuExecutor`] runs the same plan on plain-loop references, the oracle for every kernel.
//!
//! ```no_run
//! # async fn demo() -> webformer::Result<()> {
//! use webformer::{Context, DType, Graph, GpuExecutor};
//! let ctx = Context::new().await?;                     // honours WEBFORMER_BACKEND / _ADAPTER
//! let mut g = Graph::new();
//! let x = g.input("x", &[2, 4], DType::F32)?;
//! let w = g.weight("w", &[3, 4], vec![0.25f32; 12])?;  // [out, in], as checkpoints store it
//! let b = g.weight("b", &[3], vec![1.0f32, 2.0, 3.0])?;
//! let h = g.matmul_t(x, w)?;                           // [2, 3]
//! let h = g.add(h, b)?;                                // bias broadcast over rows
//! let y = g.gelu(h)?;
//! g.output(y)?;
//! let mut exe = GpuExecutor::new(&ctx, &g)?;           // pipelines, buffers, bind groups: once
//! exe.set_input("x", &[1.0f32, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0])?;
//! exe.run()?;                                          // one encoder, one pass, one submit
//! println!("{:?}", exe.read(y).await?);
//! # Ok(()) }
//! ```

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod cpu;
mod error;
pub mod exec;
pub mod gpu;
pub mod graph;
pub mod kernels;
pub mod kv;
pub mod model;
mod tensor;
#[cfg(target_arch = "wasm32")]
mod web;

pub use error::{Error, Result};
pub use exec::{CpuExecutor, GpuExecutor, Profile, SharedBuffers};
pub use gpu::{AdapterSummary, BackendChoice, Context, ContextOptions, LimitsChoice};
pub use graph::plan::{Plan, PlanOptions, Storage};
pub use graph::{Activation, Graph, MatmulImpl, MatmulOptions, Node, NodeId, NodeKind, Op, Scalar};
pub use graph::{AttentionOptions, KeyRange, SoftmaxOptions};
pub use graph::{RopeKvParams, RopeMode, SampleOptions, SAMPLE_MAX_ROW};
pub use kv::{KvCache, KvCacheConfig, Rotary};
pub use tensor::{numel, DType, Element, HostData, Tensor};
