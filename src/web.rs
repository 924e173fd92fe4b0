//! The browser API, exported through wasm-bindgen: `RawEngine` and `RawModel` (engine.rs,
//! model.rs) behind the package's hand-written `webformer.js`, and the smoke page's
//! `adapter_info`, `matmul` and `gelu` below.
//!
//! Everything here is async because on WebGPU a buffer can only be read back by awaiting the
//! browser's `mapAsync`; there is no blocking poll on the web. Errors come back as JS `Error`s
//! carrying webformer's own sentence, so a page can show them as they are.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use crate::{exec, Context, ContextOptions, DType, Graph, HostData};

mod cpu;
mod engine;
mod kernels;
mod model;
mod options;

/// Runs when the module is instantiated: without the hook a Rust panic shows in the console as
/// a bare `unreachable` trap with no message.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

thread_local! {
    /// One Context per page (or worker), made on first use. Opening an adapter and device costs
    /// a noticeable part of a small call, and the Context holds the pipeline cache, so keeping it
    /// makes repeated calls cheap. Wasm here is single-threaded, so a thread_local is "the page".
    /// Context clones share the device, so handing out a clone is cheap.
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Turns any displayable error into a JS `Error` with the same text.
pub(crate) fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// wgpu panics when it creates a WebGPU instance without `navigator.gpu`; checking first gives
/// the page an error it can catch and explain. Reflect on the global object works in windows
/// and in workers alike.
pub(crate) fn check_webgpu() -> Result<(), JsValue> {
    let global = js_sys::global();
    let navigator = js_sys::Reflect::get(&global, &JsValue::from_str("navigator")).unwrap_or(JsValue::UNDEFINED);
    let gpu = if navigator.is_object() {
        js_sys::Reflect::get(&navigator, &JsValue::from_str("gpu")).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    };
    if gpu.is_undefined() || gpu.is_null() {
        return Err(js_err(
            "WebGPU is not available in this browser (navigator.gpu is missing); use a browser with WebGPU enabled, \
             served over https or from localhost",
        ));
    }
    Ok(())
}

/// The page's Context, opened on first use (see `CONTEXT`).
async fn context() -> Result<Context, JsValue> {
    if let Some(ctx) = CONTEXT.with(|c| c.borrow().clone()) {
        return Ok(ctx);
    }
    let ctx = open_context().await?;
    // Two first calls racing each open a device; the later one is kept, both work.
    CONTEXT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    Ok(ctx)
}

/// Opens a new Context on the browser's WebGPU adapter, with errors that say what to do.
pub(crate) async fn open_context() -> Result<Context, JsValue> {
    check_webgpu()?;
    // On wasm the backend is always the browser's WebGPU; the options only name no adapter.
    let options =
        ContextOptions { backend: crate::BackendChoice::BrowserWebGpu, adapter_name: None, limits: Default::default() };
    let ctx = Context::with_options(&options).await.map_err(|e| match e {
        // The library's NoAdapter text advises native drivers; in a browser the cause is different.
        crate::Error::NoAdapter { .. } => js_err(
            "WebGPU is present but the browser offered no adapter (navigator.gpu.requestAdapter() returned null): \
             the GPU or its driver may be blocklisted; in Chromium without a usable GPU, start it with --enable-unsafe-webgpu",
        ),
        e => js_err(e),
    })?;
    Ok(ctx)
}

/// Runs a one-output graph and returns its f32 output.
async fn run_f32(graph: &Graph, inputs: &[(&str, HostData)]) -> Result<Vec<f32>, JsValue> {
    let ctx = context().await?;
    let mut out = exec::run_once(&ctx, graph, inputs).await.map_err(js_err)?;
    match out.pop() {
        Some(HostData::F32(v)) => Ok(v),
        _ => Err(js_err("webformer returned no f32 output")),
    }
}

/// The adapter in use: its `AdapterSummary` fields as an object, plus `one_line`.
#[wasm_bindgen]
pub async fn adapter_info() -> Result<JsValue, JsValue> {
    let ctx = context().await?;
    let summary = ctx.adapter();
    let mut value = serde_json::to_value(summary).map_err(js_err)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("one_line".into(), summary.one_line().into());
    }
    js_sys::JSON::parse(&value.to_string())
}

/// The graph of a [m, k] · b [k, n] -> [m, n] (inputs "a" and "b").
pub(crate) fn matmul_graph(m: usize, k: usize, n: usize) -> crate::Result<Graph> {
    let mut g = Graph::new();
    let a = g.input("a", &[m, k], DType::F32)?;
    let b = g.input("b", &[k, n], DType::F32)?;
    let c = g.matmul(a, b)?;
    g.output(c)?;
    Ok(g)
}

/// a [m, k] · b [k, n] -> [m, n], all row-major.
#[wasm_bindgen]
pub async fn matmul(a: Vec<f32>, b: Vec<f32>, m: u32, k: u32, n: u32) -> Result<Vec<f32>, JsValue> {
    let g = matmul_graph(m as usize, k as usize, n as usize).map_err(js_err)?;
    run_f32(&g, &[("a", HostData::F32(a)), ("b", HostData::F32(b))]).await
}

/// GELU with the exact erf, elementwise over a flat vector.
#[wasm_bindgen]
pub async fn gelu(x: Vec<f32>) -> Result<Vec<f32>, JsValue> {
    let build = || -> crate::Result<Graph> {
        let mut g = Graph::new();
        let i = g.input("x", &[x.len()], DType::F32)?;
        let y = g.gelu(i)?;
        g.output(y)?;
        Ok(g)
    };
    let g = build().map_err(js_err)?;
    run_f32(&g, &[("x", HostData::F32(x))]).await
}
