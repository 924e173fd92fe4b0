//! `RawEngine`: a backend (the browser's WebGPU device, or the CPU executor) and the models
//! loaded on it. The package's `Engine` class wraps it (web/package/webformer.js).

use wasm_bindgen::prelude::*;

use super::model::{Inner, Model};
use super::options::{parse, LoadOptions};
use super::{cpu, js_err, kernels, matmul_graph, open_context};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::model::{Bert, BertConfig, Embedder, Gguf, Llama, Pooling, SentenceConfig, Tokenizer};
use crate::tensor::HostData;

/// Where an engine runs its graphs.
#[derive(Clone)]
pub enum Backend {
    Gpu(Context),
    Cpu,
}

/// A compute backend and the models loaded on it.
#[wasm_bindgen(js_name = RawEngine)]
pub struct Engine {
    backend: Backend,
    /// With `auto`: why WebGPU was not used.
    cpu_reason: Option<String>,
}

#[wasm_bindgen(js_class = RawEngine)]
impl Engine {
    /// Opens `backend`: "webgpu" (an error without WebGPU), "cpu", or "auto" (WebGPU when the
    /// browser offers an adapter, else the CPU executor, with the reason kept).
    pub async fn create(backend: String) -> std::result::Result<Engine, JsValue> {
        match backend.as_str() {
            "webgpu" => Ok(Self { backend: Backend::Gpu(open_context().await?), cpu_reason: None }),
            "cpu" => Ok(Self { backend: Backend::Cpu, cpu_reason: None }),
            "auto" => Ok(match open_context().await {
                Ok(ctx) => Self { backend: Backend::Gpu(ctx), cpu_reason: None },
                Err(e) => Self { backend: Backend::Cpu, cpu_reason: Some(js_message(&e)) },
            }),
            other => Err(js_err(Error::Setting {
                name: "backend".into(),
                value: other.into(),
                expected: "'webgpu', 'cpu' or 'auto'".into(),
            })),
        }
    }

    /// The adapter as JSON: name, backend ("webgpu" or "cpu"), features, limits, and with
    /// `auto` on the CPU the reason WebGPU was not used.
    #[wasm_bindgen(js_name = adapterJson)]
    pub fn adapter_json(&self) -> String {
        let v = match &self.backend {
            Backend::Gpu(ctx) => {
                let a = ctx.adapter();
                let l = &a.limits;
                let features: Vec<&str> =
                    [("shader-f16", a.shader_f16), ("subgroups", a.subgroups), ("timestamp-query", a.timestamp_query)]
                        .iter()
                        .filter(|f| f.1)
                        .map(|f| f.0)
                        .collect();
                serde_json::json!({
                    "name": a.name,
                    "backend": "webgpu",
                    "deviceType": a.device_type,
                    "driver": a.one_line(),
                    "features": features,
                    "subgroupSize": a.subgroup_size,
                    "limits": {
                        "maxBufferSize": l.max_buffer_size,
                        "maxStorageBufferBindingSize": l.max_storage_buffer_binding_size,
                        "maxComputeWorkgroupStorageSize": l.max_compute_workgroup_storage_size,
                        "maxComputeInvocationsPerWorkgroup": l.max_compute_invocations_per_workgroup,
                        "maxStorageBuffersPerShaderStage": l.max_storage_buffers_per_shader_stage,
                        "maxComputeWorkgroupsPerDimension": l.max_compute_workgroups_per_dimension,
                        "minUniformBufferOffsetAlignment": l.min_uniform_buffer_offset_alignment,
                    },
                })
            }
            Backend::Cpu => serde_json::json!({
                "name": "webformer CPU executor (wasm32)",
                "backend": "cpu",
                "deviceType": "Cpu",
                "features": [],
                "limits": {},
                "reason": self.cpu_reason,
            }),
        };
        v.to_string()
    }

    /// Loads a Llama GGUF (bytes of the whole file). `options`: JSON of `LoadOptions`.
    #[wasm_bindgen(js_name = loadGguf)]
    pub fn load_gguf(&self, bytes: Vec<u8>, options: &str) -> std::result::Result<Model, JsValue> {
        self.gguf(bytes, options).map_err(js_err)
    }

    /// Loads a sentence-transformers BERT folder's files: config.json, model.safetensors,
    /// tokenizer.json and optionally sentence_bert_config.json, 1_Pooling/config.json and
    /// modules.json. Without the side files: mean pooling, normalised, at most 512 tokens.
    #[wasm_bindgen(js_name = loadBert)]
    #[allow(clippy::too_many_arguments)]
    pub fn load_bert(
        &self,
        config: Vec<u8>,
        weights: Vec<u8>,
        tokenizer: Vec<u8>,
        sentence: Option<Vec<u8>>,
        pooling: Option<Vec<u8>>,
        modules: Option<Vec<u8>>,
        options: &str,
    ) -> std::result::Result<Model, JsValue> {
        let files = BertFiles { config, weights, tokenizer, sentence, pooling, modules };
        self.bert(files, options).map_err(js_err)
    }

    /// a [m, k] · b [k, n] -> [m, n] (row-major) on this engine's backend.
    pub fn matmul(&self, a: Vec<f32>, b: Vec<f32>, m: u32, k: u32, n: u32) -> js_sys::Promise {
        let backend = self.backend.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let (m, k, n) = (m as usize, k as usize, n as usize);
            check_matmul(&a, &b, m, k, n).map_err(js_err)?;
            let out = match backend {
                Backend::Gpu(ctx) => {
                    let g = matmul_graph(m, k, n).map_err(js_err)?;
                    let inputs = [("a", HostData::F32(a)), ("b", HostData::F32(b))];
                    let mut out = crate::exec::run_once(&ctx, &g, &inputs).await.map_err(js_err)?;
                    out.pop().map(|o| o.to_f32()).unwrap_or_default()
                }
                Backend::Cpu => cpu::matmul(a, b, m, k, n).map_err(js_err)?,
            };
            Ok(js_sys::Float32Array::from(out.as_slice()).into())
        })
    }

    /// Runs one kernel benchmark (`spec`: JSON of `{ op: "matmul" | "attention" | "lsh" |
    /// "fft", ...sizes }`) on this backend, timed and checked against the CPU reference;
    /// resolves to the result as JSON (see `kernels::run`).
    pub fn kernel(&self, spec: String) -> js_sys::Promise {
        let backend = self.backend.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let spec: kernels::KernelSpec = parse(&spec, "engine.kernel").map_err(js_err)?;
            let v = kernels::run(&backend, spec).await.map_err(js_err)?;
            Ok(JsValue::from_str(&v.to_string()))
        })
    }

    /// The LSH buckets and sorted order of one head (`spec`: JSON of `{ l, d, buckets,
    /// rounds, chunk }`), from the graph's hash and sort ops on this backend, as JSON.
    #[wasm_bindgen(js_name = lshPicture)]
    pub fn lsh_picture(&self, spec: String) -> js_sys::Promise {
        let backend = self.backend.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let spec: kernels::PictureSpec = parse(&spec, "engine.lshPicture").map_err(js_err)?;
            let v = kernels::picture(&backend, spec).await.map_err(js_err)?;
            Ok(JsValue::from_str(&v.to_string()))
        })
    }

    /// The same product on the CPU reference, whatever the backend (the page's oracle).
    #[wasm_bindgen(js_name = matmulReference)]
    pub fn matmul_reference(
        &self,
        a: Vec<f32>,
        b: Vec<f32>,
        m: u32,
        k: u32,
        n: u32,
    ) -> std::result::Result<Vec<f32>, JsValue> {
        let (m, k, n) = (m as usize, k as usize, n as usize);
        check_matmul(&a, &b, m, k, n).map_err(js_err)?;
        cpu::matmul(a, b, m, k, n).map_err(js_err)
    }
}

/// The message of a JS error value (or its string form).
fn js_message(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Checks that a and b hold m·k and k·n values.
fn check_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Result<()> {
    if m == 0 || k == 0 || n == 0 {
        return Err(Error::Usage(format!("matmul sizes must be at least 1, got m={m}, k={k}, n={n}")));
    }
    for (what, got, want) in [("a", a.len(), m * k), ("b", b.len(), k * n)] {
        if got != want {
            return Err(Error::Usage(format!(
                "matmul input {what} has {got} values; m={m}, k={k}, n={n} needs {want}"
            )));
        }
    }
    Ok(())
}

/// The files of a BERT folder, as bytes.
struct BertFiles {
    config: Vec<u8>,
    weights: Vec<u8>,
    tokenizer: Vec<u8>,
    sentence: Option<Vec<u8>>,
    pooling: Option<Vec<u8>>,
    modules: Option<Vec<u8>>,
}

impl Engine {
    fn gguf(&self, bytes: Vec<u8>, options: &str) -> Result<Model> {
        let o: LoadOptions = parse(options, "engine.load")?;
        let file = o.name.clone().unwrap_or_else(|| "model.gguf".into());
        let sampling = o.sampling()?;
        let gguf = Gguf::parse(&bytes, &file)?;
        let arch = gguf.str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::Model {
                file,
                detail: format!(
                    "has architecture '{arch}', which webformer does not run; it decodes 'llama' GGUF files"
                ),
            });
        }
        let model = Llama::from_gguf(&gguf, &mut |_, _| {})?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        drop(gguf);
        drop(bytes);
        let context = o.context.unwrap_or(2048).min(model.config.context_length);
        if context == 0 {
            return Err(Error::Range { what: "context".into(), value: "0".into(), range: "at least 1".into() });
        }
        let inner = match &self.backend {
            Backend::Gpu(ctx) => Inner::LlamaGpu {
                gen: crate::model::Generator::new(ctx, model, context, sampling)?,
                sampling,
                tokenizer,
                file,
            },
            Backend::Cpu => Inner::LlamaCpu { model, context, sampling, tokenizer, file },
        };
        Ok(Model::new(inner))
    }

    fn bert(&self, f: BertFiles, options: &str) -> Result<Model> {
        let o: LoadOptions = parse(options, "engine.load")?;
        if o.top_k.is_some() || o.top_p.is_some() || o.context.is_some() {
            return Err(Error::Usage("topK, topP and context apply to decoders (GGUF), not to a BERT encoder".into()));
        }
        let dir = o.name.clone().unwrap_or_else(|| "model".into());
        let name = |f: &str| format!("{dir}/{f}");
        check_model_type(&f.config, &name("config.json"))?;
        let config = BertConfig::from_json(&f.config, &name("config.json"))?;
        let st = crate::model::Safetensors::parse(&f.weights, &name("model.safetensors"))?;
        config.check_layers(st.names(), &name("config.json"))?;
        let bert = Bert::from_safetensors(config, &st)?;
        drop(st);
        let mut tokenizer = Tokenizer::from_json(&f.tokenizer, &name("tokenizer.json"))?;
        if let Some(id) = tokenizer.max_id().filter(|&id| id as usize >= bert.config.vocab_size) {
            return Err(Error::Model {
                file: name("tokenizer.json"),
                detail: format!(
                    "has token id {id}, beyond the model's vocabulary of {} (config.json vocab_size); ids must be below it",
                    bert.config.vocab_size
                ),
            });
        }
        let sentence = match (&f.sentence, &f.pooling) {
            (Some(sb), Some(pool)) => SentenceConfig::from_json(sb, pool, f.modules.as_deref(), &dir)?,
            (None, None) => SentenceConfig { max_seq_length: 512, pooling: Pooling::Mean, normalize: true },
            _ => {
                return Err(Error::Usage(
                    "give sentenceConfig (sentence_bert_config.json) and pooling (1_Pooling/config.json) together, or neither".into(),
                ))
            }
        };
        let inner = match &self.backend {
            Backend::Gpu(ctx) => Inner::BertGpu { embedder: Embedder::new(ctx, bert, tokenizer, sentence)? },
            Backend::Cpu => {
                tokenizer.truncate(sentence.max_seq_length.min(bert.config.max_position_embeddings))?;
                Inner::BertCpu { bert, tokenizer, sentence }
            }
        };
        Ok(Model::new(inner))
    }
}

/// Refuses a config.json of another architecture with a sentence that says what loads.
fn check_model_type(config: &[u8], file: &str) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| Error::Model { file: file.into(), detail: format!("is not JSON: {e}") })?;
    match v.get("model_type").and_then(|t| t.as_str()) {
        Some("bert") | None => Ok(()),
        Some(other) => Err(Error::Model {
            file: file.into(),
            detail: format!(
                "has model_type '{other}'; in the browser webformer loads 'bert' folders ({{ config, weights, tokenizer }}) and Llama GGUF files ({{ gguf }})"
            ),
        }),
    }
}
