//! `RawModel`: a loaded model and its calls (generate, embed, forward). The package's `Model`
//! class wraps it (web/package/webformer.js) and queues calls; here a call made while another
//! runs is refused, since the model is lent to the running call (taken out of its slot) for
//! as long as that call awaits the GPU.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::cpu;
use super::js_err;
use super::options::{parse, GenerateOpts};
use crate::error::{Error, Result};
use crate::model::{
    Bert, ChatTemplate, Embedder, Generation, Generator, Llama, Message, Pooling, Sampling, SentenceConfig, TextStream,
    Tokenizer,
};

/// A loaded model, on the GPU or for the CPU executor.
pub enum Inner {
    LlamaGpu { gen: Generator, sampling: Sampling, tokenizer: Tokenizer, file: String },
    LlamaCpu { model: Llama, context: usize, sampling: Sampling, tokenizer: Tokenizer, file: String },
    BertGpu { embedder: Embedder },
    BertCpu { bert: Bert, tokenizer: Tokenizer, sentence: SentenceConfig },
}

type Slot = Rc<RefCell<Option<Inner>>>;

/// A model loaded by a `RawEngine`.
#[wasm_bindgen(js_name = RawModel)]
pub struct Model {
    slot: Slot,
    info: String,
}

impl Model {
    pub fn new(inner: Inner) -> Self {
        let info = info(&inner).to_string();
        Self { slot: Rc::new(RefCell::new(Some(inner))), info }
    }
}

/// Lends the model to one call, or says why it cannot.
fn take(slot: &Slot) -> std::result::Result<Inner, JsValue> {
    slot.borrow_mut().take().ok_or_else(|| {
        js_err("this model is busy with another call (generate, embed and forward run one at a time on a model); await the first")
    })
}

#[wasm_bindgen(js_class = RawModel)]
impl Model {
    /// What the model is, as JSON: kind, backend and sizes.
    #[wasm_bindgen(js_name = infoJson)]
    pub fn info_json(&self) -> String {
        self.info.clone()
    }

    /// Generates after `prompt`; `options` is JSON of `GenerateOpts`. `on_piece(text, id)` is
    /// called with each new token's text; returning `false` stops. Resolves to the JSON of
    /// `{ ids, text, promptIds, stoppedAtEos, stats }`.
    pub fn generate(&self, prompt: String, options: String, on_piece: Option<js_sys::Function>) -> js_sys::Promise {
        let slot = self.slot.clone();
        future_to_promise(async move {
            let mut inner = take(&slot)?;
            let r = generate(&mut inner, &prompt, &options, on_piece.as_ref()).await;
            *slot.borrow_mut() = Some(inner);
            r
        })
    }

    /// Sentence embeddings of `texts` (normalised when the model says so, as the CLI).
    /// Resolves to an array of Float32Array.
    pub fn embed(&self, texts: Vec<String>) -> js_sys::Promise {
        let slot = self.slot.clone();
        future_to_promise(async move {
            let mut inner = take(&slot)?;
            let r = embed(&mut inner, &texts).await;
            *slot.borrow_mut() = Some(inner);
            r.map_err(js_err)
        })
    }

    /// The model's final output for token ids: logits [T, vocab] for a decoder, the last
    /// hidden state [T, hidden] for an encoder. Resolves to `{ shape, data: Float32Array }`.
    pub fn forward(&self, ids: Vec<u32>) -> js_sys::Promise {
        let slot = self.slot.clone();
        future_to_promise(async move {
            let mut inner = take(&slot)?;
            let r = forward(&mut inner, &ids).await;
            *slot.borrow_mut() = Some(inner);
            let (shape, data) = r.map_err(js_err)?;
            let out = js_sys::Object::new();
            let shape: js_sys::Array = shape.iter().map(|&d| JsValue::from(d as u32)).collect();
            js_sys::Reflect::set(&out, &"shape".into(), &shape)?;
            js_sys::Reflect::set(&out, &"data".into(), &js_sys::Float32Array::from(data.as_slice()))?;
            Ok(out.into())
        })
    }

    /// Token ids of `text` (special tokens added as the model adds them).
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, JsValue> {
        let slot = self.slot.borrow();
        let inner = slot.as_ref().ok_or_else(|| js_err("this model is busy with another call; await it first"))?;
        tokenizer(inner).encode(text, true).map_err(js_err)
    }

    /// The text of token ids (special tokens left out).
    pub fn decode(&self, ids: Vec<u32>) -> std::result::Result<String, JsValue> {
        let slot = self.slot.borrow();
        let inner = slot.as_ref().ok_or_else(|| js_err("this model is busy with another call; await it first"))?;
        tokenizer(inner).decode(&ids, true).map_err(js_err)
    }

    /// GPU time of every node of one decode step (WebGPU with timestamp queries), as JSON rows.
    #[wasm_bindgen(js_name = profileDecode)]
    pub fn profile_decode(&self, position: u32) -> js_sys::Promise {
        let slot = self.slot.clone();
        future_to_promise(async move {
            let mut inner = take(&slot)?;
            let r = match &mut inner {
                Inner::LlamaGpu { gen, .. } => gen.profile_decode(position as usize).await.map(|p| p.to_json()),
                _ => Err(Error::Usage("profiling needs a decoder (GGUF) on the WebGPU backend".into())),
            };
            *slot.borrow_mut() = Some(inner);
            Ok(JsValue::from_str(&r.map_err(js_err)?))
        })
    }
}

fn tokenizer(inner: &Inner) -> &Tokenizer {
    match inner {
        Inner::LlamaGpu { tokenizer, .. } | Inner::LlamaCpu { tokenizer, .. } | Inner::BertCpu { tokenizer, .. } => {
            tokenizer
        }
        Inner::BertGpu { embedder } => embedder.tokenizer(),
    }
}

fn info(inner: &Inner) -> serde_json::Value {
    match inner {
        Inner::LlamaGpu { gen, .. } => llama_info(gen.model(), "webgpu", gen.max_context()),
        Inner::LlamaCpu { model, context, .. } => llama_info(model, "cpu", *context),
        Inner::BertGpu { embedder } => bert_info(embedder.bert(), "webgpu"),
        Inner::BertCpu { bert, .. } => bert_info(bert, "cpu"),
    }
}

fn llama_info(m: &Llama, backend: &str, context: usize) -> serde_json::Value {
    let c = &m.config;
    serde_json::json!({
        "kind": "llama", "backend": backend, "layers": c.n_layers, "hidden": c.hidden, "heads": c.n_heads,
        "kvHeads": c.n_kv_heads, "vocab": c.vocab, "context": context, "modelContext": c.context_length,
        "weightBytes": m.weight_bytes(), "chatTemplate": c.chat_template.is_some(),
    })
}

fn bert_info(b: &Bert, backend: &str) -> serde_json::Value {
    let c = &b.config;
    serde_json::json!({
        "kind": "bert", "backend": backend, "layers": c.num_hidden_layers, "hidden": c.hidden_size,
        "heads": c.num_attention_heads, "vocab": c.vocab_size, "context": c.max_position_embeddings,
        "weightBytes": b.weight_bytes(),
    })
}

/// The prompt's text: as given, or wrapped in the model's chat template.
fn render_prompt(m: &Llama, file: &str, text: &str, o: &GenerateOpts) -> Result<String> {
    if !o.chat {
        if o.system.is_some() {
            return Err(Error::Usage("the system option applies to chat: true only".into()));
        }
        return Ok(text.into());
    }
    let template = ChatTemplate::from_jinja(m.config.chat_template.as_deref().unwrap_or(""), file)?;
    let mut messages = Vec::new();
    messages.extend(o.system.as_deref().map(Message::system));
    messages.push(Message::user(text));
    Ok(template.render(&messages, true))
}

/// Calls the page's `on_piece(text, id)`; false (returned, or thrown, kept in `failure`) stops.
fn call_piece(f: Option<&js_sys::Function>, piece: &str, id: u32, failure: &mut Option<JsValue>) -> bool {
    let Some(f) = f else { return true };
    match f.call2(&JsValue::NULL, &JsValue::from_str(piece), &JsValue::from(id)) {
        Ok(v) => v.as_bool() != Some(false),
        Err(e) => {
            *failure = Some(e);
            false
        }
    }
}

async fn generate(
    inner: &mut Inner,
    prompt: &str,
    options: &str,
    on_piece: Option<&js_sys::Function>,
) -> std::result::Result<JsValue, JsValue> {
    let o: GenerateOpts = parse(options, "model.generate").map_err(js_err)?;
    if prompt.trim().is_empty() {
        return Err(js_err("the prompt is empty: give some text to continue"));
    }
    let (llama, file) = match &*inner {
        Inner::LlamaGpu { gen, file, .. } => (gen.model(), file),
        Inner::LlamaCpu { model, file, .. } => (model, file),
        _ => {
            return Err(js_err(
                "generate needs a decoder (a Llama GGUF); this model is an encoder: use embed or forward",
            ))
        }
    };
    let text = render_prompt(llama, file, prompt, &o).map_err(js_err)?;
    generate_text(inner, &text, &o, on_piece).await
}

/// Tokenizes `text`, checks it against the context and runs the backend's generation loop.
async fn generate_text(
    inner: &mut Inner,
    text: &str,
    o: &GenerateOpts,
    on_piece: Option<&js_sys::Function>,
) -> std::result::Result<JsValue, JsValue> {
    let mut failure = None;
    let (ids, out, tokenizer) = match inner {
        Inner::LlamaGpu { gen, sampling, tokenizer, .. } => {
            let opts = o.to_options(*sampling).map_err(js_err)?;
            let ids = tokenizer.encode(text, true).map_err(js_err)?;
            let opts = fit_context(opts, ids.len(), gen.max_context()).map_err(js_err)?;
            let mut stream = TextStream::new(tokenizer);
            let out = gen
                .generate(&ids, &opts, |id| {
                    let piece = stream.push(id).unwrap_or_default();
                    call_piece(on_piece, &piece, id, &mut failure)
                })
                .await;
            (ids, out, &*tokenizer)
        }
        Inner::LlamaCpu { model, context, sampling, tokenizer, .. } => {
            let opts = o.to_options(*sampling).map_err(js_err)?;
            let ids = tokenizer.encode(text, true).map_err(js_err)?;
            let opts = fit_context(opts, ids.len(), *context).map_err(js_err)?;
            let mut stream = TextStream::new(tokenizer);
            let out = cpu::generate(model, *sampling, &ids, &opts, |id| {
                let piece = stream.push(id).unwrap_or_default();
                call_piece(on_piece, &piece, id, &mut failure)
            })
            .await;
            (ids, out, &*tokenizer)
        }
        _ => return Err(js_err("generate needs a decoder (a Llama GGUF)")),
    };
    if let Some(e) = failure {
        return Err(e);
    }
    let out: Generation = out.map_err(js_err)?;
    let text = tokenizer.decode(&out.ids, true).map_err(js_err)?;
    let s = out.stats;
    let v = serde_json::json!({
        "ids": out.ids,
        "text": text,
        "promptIds": ids,
        "stoppedAtEos": out.stopped_at_eos,
        "stats": {
            "promptTokens": s.prompt_tokens,
            "generatedTokens": s.generated_tokens,
            "promptSetupS": s.prompt_setup_s,
            "prefillS": s.prefill_s,
            "decodeS": s.decode_s,
            "prefillTokensPerS": s.prefill_tokens_per_s(),
            "decodeTokensPerS": s.decode_tokens_per_s(),
        },
    });
    js_sys::JSON::parse(&v.to_string())
}

/// Caps the new tokens to the room the context leaves, as the CLI does; a prompt that fills
/// the context is an error.
fn fit_context(
    mut o: crate::model::GenerateOptions,
    prompt: usize,
    context: usize,
) -> Result<crate::model::GenerateOptions> {
    if prompt >= context {
        return Err(Error::Usage(format!(
            "the prompt is {prompt} tokens, longer than the context of {context} (load with a larger context)"
        )));
    }
    o.max_tokens = o.max_tokens.min(context - prompt);
    Ok(o)
}

async fn embed(inner: &mut Inner, texts: &[String]) -> Result<JsValue> {
    if texts.is_empty() {
        return Err(Error::Usage("give at least one text to embed".into()));
    }
    let out = js_sys::Array::new();
    for t in texts {
        let v = match inner {
            Inner::BertGpu { embedder } => embedder.embed(t).await?,
            Inner::BertCpu { bert, tokenizer, sentence } => {
                let ids = tokenizer.encode(t, true)?;
                let (_, mut pooled) = cpu::bert_run(bert, sentence.pooling, &ids)?;
                if sentence.normalize {
                    normalize(&mut pooled);
                }
                cpu::yield_now().await;
                pooled
            }
            _ => {
                return Err(Error::Usage(
                    "embed needs an encoder (a BERT folder); this model is a decoder: use generate or forward".into(),
                ))
            }
        };
        out.push(&js_sys::Float32Array::from(v.as_slice()));
    }
    Ok(out.into())
}

/// L2 normalisation in f64, as `Embedder` does.
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
}

async fn forward(inner: &mut Inner, ids: &[u32]) -> Result<(Vec<usize>, Vec<f32>)> {
    if ids.is_empty() {
        return Err(Error::Usage("forward needs at least one token id".into()));
    }
    match inner {
        Inner::LlamaGpu { gen, .. } => {
            let vocab = gen.model().config.vocab;
            Ok((vec![ids.len(), vocab], gen.logits(ids).await?))
        }
        Inner::LlamaCpu { model, context, .. } => {
            if ids.len() > *context {
                return Err(Error::Usage(format!("{} ids are longer than the context of {context}", ids.len())));
            }
            Ok((vec![ids.len(), model.config.vocab], cpu::llama_logits(model, ids)?))
        }
        Inner::BertGpu { embedder } => {
            let hidden = embedder.bert().config.hidden_size;
            Ok((vec![ids.len(), hidden], embedder.encode_ids(ids).await?.hidden))
        }
        Inner::BertCpu { bert, .. } => {
            let hidden = bert.config.hidden_size;
            Ok((vec![ids.len(), hidden], cpu::bert_run(bert, Pooling::Mean, ids)?.0))
        }
    }
}
