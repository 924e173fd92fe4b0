//! KernelKey -> compute pipeline, created once and cached.
//!
//! Every kernel follows one binding convention, so the executor can bind any of them without
//! knowing which it is:
//! - binding 0: the node's params (uniform, a 256-byte slot of the plan's params buffer);
//! - binding 1: the run's runtime values (uniform, `graph::RUNTIME_SLOTS` u32s, written once per run);
//! - bindings 2..: outputs (read-write storage), then inputs (read-only storage).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::kernels::KernelKey;

/// Bytes reserved for one node's params; also the uniform offset alignment we rely on.
pub const PARAMS_SLOT: u64 = 256;
/// Binding index of the first output.
pub const FIRST_IO_BINDING: u32 = 2;

/// A compiled kernel and the layout its bind groups are made against.
pub struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Pipelines by typed key, plus shader modules by family (one module serves every entry point).
#[derive(Default)]
pub struct PipelineCache {
    pipelines: Mutex<HashMap<KernelKey, Arc<CachedPipeline>>>,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl PipelineCache {
    /// The pipeline for `key`, compiling it on first use.
    pub fn get(&self, ctx: &Context, key: KernelKey) -> Result<Arc<CachedPipeline>> {
        if let Some(p) = self.pipelines.lock().map_err(poisoned)?.get(&key) {
            return Ok(p.clone());
        }
        let p = Arc::new(self.build(ctx, key)?);
        self.pipelines.lock().map_err(poisoned)?.insert(key, p.clone());
        Ok(p)
    }

    /// Number of pipelines compiled so far (for tests and the plan dump).
    pub fn len(&self) -> usize {
        self.pipelines.lock().map(|p| p.len()).unwrap_or(0)
    }

    fn build(&self, ctx: &Context, key: KernelKey) -> Result<CachedPipeline> {
        let (n_out, n_in) = key.io_counts();
        let max = ctx.limits().max_storage_buffers_per_shader_stage;
        if n_out + n_in > max {
            return Err(Error::Limit {
                what: format!("kernel {key:?}"),
                needed: (n_out + n_in) as u64,
                max: max as u64,
                limit: "max_storage_buffers_per_shader_stage",
            });
        }
        let mut entries = vec![uniform_entry(0), uniform_entry(1)];
        for i in 0..n_out + n_in {
            entries.push(storage_entry(FIRST_IO_BINDING + i, i >= n_out));
        }
        let label = format!("{key:?}");
        let module = self.module(ctx, key)?;
        let layout = ctx
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
        let pl = ctx.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(key.entry_point()),
            compilation_options: Default::default(),
            cache: None,
        });
        ctx.check_errors(&format!("compiling kernel {label}"))?;
        Ok(CachedPipeline { pipeline, layout })
    }

    fn module(&self, ctx: &Context, key: KernelKey) -> Result<wgpu::ShaderModule> {
        let name = key.family();
        let mut modules = self.modules.lock().map_err(poisoned)?;
        if let Some(m) = modules.get(name) {
            return Ok(m.clone());
        }
        let m = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(crate::kernels::module_source(name).into()),
        });
        ctx.check_errors(&format!("compiling shaders/{name}.wgsl"))?;
        modules.insert(name, m.clone());
        Ok(m)
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Usage("pipeline cache lock poisoned by an earlier panic".into())
}
