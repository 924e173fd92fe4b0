//! Adapter choice, device creation and what we were granted.
//!
//! Why request the adapter's own limits: WebGPU's defaults (128 MiB bindings, 16 KiB workgroup
//! storage) are far below what real GPUs offer, and transformer weights need the difference.
//! Kernels read `Context::limits()` and choose within it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::pipeline::PipelineCache;

/// Which graphics API to run on. `Auto` lets webformer pick the best adapter it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
    /// The browser's WebGPU (only meaningful on wasm32).
    BrowserWebGpu,
}

impl BackendChoice {
    /// Reads `WEBFORMER_BACKEND` (vulkan|metal|dx12|gl|auto); unset means auto.
    pub fn from_env() -> Result<Self> {
        match std::env::var("WEBFORMER_BACKEND") {
            Ok(v) => Self::parse(&v),
            Err(_) => Ok(Self::Auto),
        }
    }

    /// Parses a backend name as used by `WEBFORMER_BACKEND`.
    pub fn parse(value: &str) -> Result<Self> {
        Ok(match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Self::Auto,
            "vulkan" | "vk" => Self::Vulkan,
            "metal" | "mtl" => Self::Metal,
            "dx12" | "d3d12" => Self::Dx12,
            "gl" | "gles" | "opengl" => Self::Gl,
            "webgpu" | "browser" => Self::BrowserWebGpu,
            _ => {
                return Err(Error::Setting {
                    name: "WEBFORMER_BACKEND".into(),
                    value: value.into(),
                    expected: "vulkan, metal, dx12, gl, auto".into(),
                })
            }
        })
    }

    fn backends(self) -> wgpu::Backends {
        match self {
            Self::Auto => wgpu::Backends::all(),
            Self::Vulkan => wgpu::Backends::VULKAN,
            Self::Metal => wgpu::Backends::METAL,
            Self::Dx12 => wgpu::Backends::DX12,
            Self::Gl => wgpu::Backends::GL,
            Self::BrowserWebGpu => wgpu::Backends::BROWSER_WEBGPU,
        }
    }
}

/// How to choose an adapter. `Default` reads the environment (`WEBFORMER_BACKEND`,
/// `WEBFORMER_ADAPTER`), so every program built on webformer honours the same switches.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    pub backend: BackendChoice,
    /// Keep only adapters whose name contains this (case-insensitive).
    pub adapter_name: Option<String>,
    /// Which limits to request from the adapter.
    pub limits: LimitsChoice,
}

/// The limits a context asks its device for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitsChoice {
    /// Everything the adapter offers (the default: real GPUs offer far more than WebGPU's
    /// baseline, and large weights need it).
    #[default]
    Adapter,
    /// WebGPU's baseline (128 MiB storage bindings, 256 MiB buffers, 16 KiB workgroup storage,
    /// 8 storage buffers per stage), or less where the adapter has less: what every browser
    /// grants a page that asks for nothing, so native runs can check that a model fits there.
    WebGpuDefault,
}

impl LimitsChoice {
    /// Reads `WEBFORMER_LIMITS` (adapter|webgpu); unset means adapter.
    pub fn from_env() -> Result<Self> {
        let v = std::env::var("WEBFORMER_LIMITS").unwrap_or_default();
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "adapter" => Ok(Self::Adapter),
            "webgpu" | "webgpu-default" => Ok(Self::WebGpuDefault),
            _ => Err(Error::Setting { name: "WEBFORMER_LIMITS".into(), value: v, expected: "adapter, webgpu".into() }),
        }
    }

    fn request(self, adapter: &wgpu::Limits) -> wgpu::Limits {
        match self {
            Self::Adapter => adapter.clone(),
            Self::WebGpuDefault => wgpu::Limits::defaults().or_worse_values_from(adapter),
        }
    }
}

impl ContextOptions {
    /// Options from `WEBFORMER_BACKEND`, `WEBFORMER_ADAPTER` and `WEBFORMER_LIMITS`.
    pub fn from_env() -> Result<Self> {
        let adapter_name = std::env::var("WEBFORMER_ADAPTER").ok().filter(|s| !s.is_empty());
        Ok(Self { backend: BackendChoice::from_env()?, adapter_name, limits: LimitsChoice::from_env()? })
    }
}

/// The limits that matter to webformer's kernels, as granted by the device.
#[derive(Debug, Clone, Serialize)]
pub struct LimitsSummary {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub min_uniform_buffer_offset_alignment: u32,
}

impl From<&wgpu::Limits> for LimitsSummary {
    fn from(l: &wgpu::Limits) -> Self {
        Self {
            max_buffer_size: l.max_buffer_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            min_uniform_buffer_offset_alignment: l.min_uniform_buffer_offset_alignment,
        }
    }
}

/// A description of one adapter, for `webformer info` and for the log line of every run.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub shader_f16: bool,
    pub subgroups: bool,
    pub subgroup_size: [u32; 2],
    pub timestamp_query: bool,
    pub limits: LimitsSummary,
}

impl AdapterSummary {
    fn new(info: &wgpu::AdapterInfo, features: wgpu::Features, limits: &wgpu::Limits) -> Self {
        // Browsers may hide the adapter's description (WebGPU's privacy rules); say what it is.
        let name = if info.name.is_empty() { format!("unnamed {:?} adapter", info.backend) } else { info.name.clone() };
        Self {
            name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            subgroup_size: [info.subgroup_min_size, info.subgroup_max_size],
            timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            limits: limits.into(),
        }
    }

    /// One line: name, backend, type and driver.
    pub fn one_line(&self) -> String {
        let driver = [self.driver.as_str(), self.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "{} ({}, {}, driver: {})",
            self.name,
            self.backend,
            self.device_type,
            if driver.is_empty() { "unknown" } else { &driver }
        )
    }
}

/// Points `XDG_RUNTIME_DIR` at a private folder when it is unset or not a usable folder
/// (native Unix only; call it at the start of `main`, before any thread exists, because it
/// sets an environment variable).
///
/// Why: Mesa's Vulkan drivers (lavapipe included) load their Wayland window-system code while
/// the instance is created, and libwayland prints `error: XDG_RUNTIME_DIR is invalid or not set
/// in the environment` when the variable is missing, as on servers, containers and CI. The
/// line is harmless but reads as if webformer had failed. webformer draws no windows, so any
/// private folder will do: `$TMPDIR/webformer-runtime-<uid>`, created with mode 0700 and used
/// only if it is ours and closed to others. A valid variable is left alone.
pub fn ensure_runtime_dir() {
    #[cfg(all(unix, not(target_arch = "wasm32")))]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let usable = |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_dir());
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| !d.is_empty() && usable(std::path::Path::new(&d))) {
            return;
        }
        // The owner of a file we create is our effective uid: read it back from a fresh file.
        let tmp = std::env::temp_dir();
        let probe = tmp.join(format!("webformer-uid-{}", std::process::id()));
        let uid = std::fs::File::create(&probe).and_then(|f| f.metadata()).map(|m| m.uid());
        let _ = std::fs::remove_file(&probe);
        let Ok(uid) = uid else { return };
        let dir = tmp.join(format!("webformer-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let private = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        if private {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// The optional features webformer uses when an adapter has them.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = if cfg!(target_arch = "wasm32") { wgpu::Backends::BROWSER_WEBGPU } else { backends };
    wgpu::Instance::new(desc)
}

/// Adapters for `options`. With `Auto`, GL is only tried when no native API (Vulkan, Metal,
/// DX12) has an adapter: initialising EGL is slow and prints warnings on headless machines.
async fn adapters_for(options: &ContextOptions) -> Vec<wgpu::Adapter> {
    if options.backend == BackendChoice::Auto && !cfg!(target_arch = "wasm32") {
        let primary = find_adapters(&new_instance(wgpu::Backends::PRIMARY), options).await;
        if !primary.is_empty() {
            return primary;
        }
    }
    find_adapters(&new_instance(options.backend.backends()), options).await
}

/// Orders adapters: real GPUs first, then the native APIs before GL.
fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let api = if info.backend == wgpu::Backend::Gl { 1 } else { 0 };
    (kind, api)
}

/// Every adapter the chosen backends expose (native, GL included), or the browser's (wasm).
pub async fn list_adapters(options: &ContextOptions) -> Result<Vec<AdapterSummary>> {
    Ok(find_adapters(&new_instance(options.backend.backends()), options)
        .await
        .iter()
        .map(|a| AdapterSummary::new(&a.get_info(), a.features(), &a.limits()))
        .collect())
}

async fn find_adapters(instance: &wgpu::Instance, options: &ContextOptions) -> Vec<wgpu::Adapter> {
    let mut adapters = if cfg!(target_arch = "wasm32") {
        let opts = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        instance.request_adapter(&opts).await.into_iter().collect()
    } else {
        instance.enumerate_adapters(wgpu::Backends::all()).await
    };
    if let Some(name) = &options.adapter_name {
        let name = name.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&name));
    }
    adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
    adapters
}

/// A GPU device ready for webformer: the adapter's limits and useful features, a pipeline
/// cache, and a record of GPU errors so that none of them panics. Cloning is cheap and shares
/// the device.
#[derive(Clone)]
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: Arc<PipelineCache>,
    summary: AdapterSummary,
    features: wgpu::Features,
    limits: wgpu::Limits,
    errors: Arc<Mutex<Vec<String>>>,
    /// Set by the device-lost callback: why the device went away.
    lost: Arc<Mutex<Option<String>>>,
    buffers_created: Arc<AtomicUsize>,
}

impl Context {
    /// Opens the best adapter allowed by the environment (`WEBFORMER_BACKEND`, `WEBFORMER_ADAPTER`).
    ///
    /// ```no_run
    /// # async fn demo() -> webformer::Result<()> {
    /// let ctx = webformer::Context::new().await?;
    /// println!("running on {}", ctx.adapter().one_line());
    /// # Ok(()) }
    /// ```
    pub async fn new() -> Result<Self> {
        Self::with_options(&ContextOptions::from_env()?).await
    }

    /// Opens the best adapter that matches `options`.
    pub async fn with_options(options: &ContextOptions) -> Result<Self> {
        let adapters = adapters_for(options).await;
        let Some(adapter) = adapters.into_iter().next() else {
            let mut detail = format!(" for backend {:?}", options.backend);
            if let Some(n) = &options.adapter_name {
                detail.push_str(&format!(" with a name containing '{n}'"));
            }
            return Err(Error::NoAdapter { detail, hint: crate::error::NO_ADAPTER_HINT });
        };
        Self::from_adapter(adapter, options.limits).await
    }

    async fn from_adapter(adapter: wgpu::Adapter, choice: LimitsChoice) -> Result<Self> {
        let info = adapter.get_info();
        let features = adapter.features() & wanted_features();
        let limits = choice.request(&adapter.limits());
        let desc = wgpu::DeviceDescriptor {
            label: Some("webformer"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| Error::Device { adapter: info.name.clone(), reason: e.to_string() })?;
        // wgpu's default handler panics on a validation error; we record instead and turn the
        // record into an Error at the next checkpoint (see `check_errors`).
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = lost_sink.lock() {
                let reason = match reason {
                    wgpu::DeviceLostReason::Destroyed => "the device was destroyed".to_string(),
                    _ => "the driver reported it lost".to_string(),
                };
                *l = Some(if message.is_empty() { reason } else { format!("{reason}: {message}") });
            }
        });
        let summary = AdapterSummary::new(&info, device.features(), &device.limits());
        let limits = device.limits();
        Ok(Self {
            device,
            queue,
            pipelines: Default::default(),
            summary,
            features,
            limits,
            errors,
            lost,
            buffers_created: Default::default(),
        })
    }

    /// The adapter in use, its features and granted limits.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Limits granted to this device: the adapter's own, or WebGPU's baseline when the
    /// context was opened with [`LimitsChoice::WebGpuDefault`].
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Whether the device has `feature` enabled.
    pub fn has(&self, feature: wgpu::Features) -> bool {
        self.features.contains(feature)
    }

    /// The raw wgpu device, for programs that mix webformer with their own GPU work.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The raw wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Every GPU buffer webformer makes goes through here, so tests can count allocations.
    pub(crate) fn create_buffer(&self, desc: &wgpu::BufferDescriptor) -> wgpu::Buffer {
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer(desc)
    }

    /// How many compute pipelines have been compiled (each kernel variant once).
    pub fn pipelines_compiled(&self) -> usize {
        self.pipelines.len()
    }

    /// How many GPU buffers webformer has created on this device so far.
    pub fn buffers_created(&self) -> usize {
        self.buffers_created.load(Ordering::Relaxed)
    }

    /// Releases the GPU device now, with all its buffers and pipelines, instead of when the
    /// last clone of this context is dropped. Afterwards every call on this context (and on
    /// executors made from it) fails with [`Error::DeviceLost`], as after a driver reset; a new
    /// `Context` in the same process works normally.
    pub fn destroy(&self) {
        self.device.destroy();
        self.poll_wait();
    }

    /// `Error::DeviceLost` if the device is gone.
    pub(crate) fn check_lost(&self, during: &str) -> Result<()> {
        let lost = self.lost.lock().ok().and_then(|l| l.clone());
        match lost {
            Some(reason) => {
                Err(Error::DeviceLost { adapter: self.summary.name.clone(), during: during.into(), reason })
            }
            None => Ok(()),
        }
    }

    /// Turns GPU errors recorded since the last check into an `Error` naming `during`; a lost
    /// device is reported as such (its validation errors are only consequences).
    pub(crate) fn check_errors(&self, during: &str) -> Result<()> {
        self.check_lost(during)?;
        let mut errs = self.errors.lock().map_err(|_| Error::Usage("GPU error log poisoned".into()))?;
        if errs.is_empty() {
            return Ok(());
        }
        let message = errs.join("; ");
        errs.clear();
        Err(Error::Gpu { during: during.into(), message })
    }

    /// Waits until all work submitted so far has finished on the GPU.
    pub async fn sync(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.poll_wait();
        rx.await
            .map_err(|_| Error::Gpu { during: "waiting for the GPU".into(), message: "the device was lost".into() })?;
        self.check_errors("waiting for the GPU")
    }

    /// Lets the device make progress (native only; the browser drives itself).
    pub(crate) fn poll_wait(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }
}
