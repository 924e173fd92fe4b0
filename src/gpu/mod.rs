//! wgpu plumbing. Knows nothing of ops: devices, buffers, pipelines, timing.

pub(crate) mod buffer;
mod context;
pub(crate) mod pipeline;
pub(crate) mod profile;

pub use context::{
    ensure_runtime_dir, list_adapters, AdapterSummary, BackendChoice, Context, ContextOptions, LimitsChoice,
    LimitsSummary,
};
