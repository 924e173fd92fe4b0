//! Text generation with a Llama decoder: a prompt plan per prompt, then a one-token plan
//! replayed for every new token. Both share the weights and the KV cache (`SharedBuffers`),
//! so only the token id and the runtime slots (position, temperature, seed) change between
//! steps. Sampling runs on the GPU: each step reads back 4 bytes.
//!
//! ```no_run
//! # async fn demo(ctx: &webformer::Context, gguf: &webformer::model::Gguf<'_>) -> webformer::Result<()> {
//! use webformer::model::{GenerateOptions, Generator, Llama, Sampling, Tokenizer};
//! let model = Llama::from_gguf(gguf, &mut |_, _| {})?;
//! let tok = Tokenizer::from_gguf(gguf)?;
//! let mut gen = Generator::new(ctx, model, 2048, Sampling::default())?;
//! let prompt = tok.encode("The capital of France is", true)?;
//! let out = gen.generate(&prompt, &GenerateOptions { max_tokens: 16, ..Default::default() }, |_| true).await?;
//! println!("{}", tok.decode(&out.ids, true)?);
//! # Ok(()) }
//! ```

use super::guard;
use super::llama::{Head, Llama, LlamaGraph, Sampling, POS, SEED, TEMPERATURE};
use crate::error::{Error, Result};
use crate::exec::{GpuExecutor, Profile, SharedBuffers};
use crate::gpu::Context;
use crate::graph::plan::Plan;
use crate::kv::KvCache;
use crate::tensor::{DType, HostData};

/// Settings of one generation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenerateOptions {
    /// New tokens at most (the end-of-sequence token counts and stops).
    pub max_tokens: usize,
    /// Softmax temperature; 0 = greedy (argmax).
    pub temperature: f32,
    /// Seed of the draws (fixed seed, same tokens).
    pub seed: u64,
    /// Stop after the end-of-sequence token (benchmarks turn this off to decode a fixed count).
    pub stop_at_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self { max_tokens: 64, temperature: 0.0, seed: 0, stop_at_eos: true }
    }
}

impl GenerateOptions {
    /// Checks the ranges: `temperature` a finite number >= 0 (a negative, NaN or infinite
    /// temperature has no meaning: softmax(l / T) would flip, or turn to NaN).
    pub fn check(&self) -> Result<()> {
        let t = self.temperature;
        if !(t.is_finite() && t >= 0.0) {
            return Err(Error::Range {
                what: "temperature".into(),
                value: t.to_string(),
                range: "a finite number >= 0 (0 picks the most likely token)".into(),
            });
        }
        Ok(())
    }
}

impl Sampling {
    /// Checks the ranges: `top_p` in (0, 1] (1 keeps every token; 0 would keep none).
    /// `top_k` takes any value (0, or at least the vocabulary, keeps every token).
    pub fn check(&self) -> Result<()> {
        let p = self.top_p;
        if !(p > 0.0 && p <= 1.0) {
            return Err(Error::Range {
                what: "top-p".into(),
                value: p.to_string(),
                range: "in (0, 1] (1 keeps every token)".into(),
            });
        }
        Ok(())
    }
}

/// Timings of one generation (seconds of wall clock, readbacks included).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct GenerateStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Building the prompt plan and its executor.
    pub prompt_setup_s: f64,
    /// Running the prompt plan and reading the first new token.
    pub prefill_s: f64,
    /// All decode steps (every token after the first).
    pub decode_s: f64,
}

impl GenerateStats {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_s.max(1e-12)
    }

    /// Tokens per second of the decode steps (the first new token comes from the prefill).
    pub fn decode_tokens_per_s(&self) -> f64 {
        self.generated_tokens.saturating_sub(1) as f64 / self.decode_s.max(1e-12)
    }
}

/// The result of `Generator::generate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// New token ids (the end-of-sequence token included when it stopped generation).
    pub ids: Vec<u32>,
    pub stopped_at_eos: bool,
    pub stats: GenerateStats,
}

/// A Llama model on the GPU, ready to generate. The decode plan is built once; prompt plans
/// per prompt length.
pub struct Generator {
    ctx: Context,
    model: Llama,
    cache: KvCache,
    shared: SharedBuffers,
    sampling: Sampling,
    decode: (GpuExecutor, LlamaGraph),
    check_finite: bool,
}

/// A fresh, reproducible u32 seed for every sampled token: SplitMix64 of (seed, step).
/// Crate-visible so the browser's CPU backend draws the same tokens as the GPU path.
pub(crate) fn seed_for(seed: u64, step: usize) -> u32 {
    splitmix64(seed.wrapping_add((step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))) as u32
}

/// SplitMix64's output function: a well-mixed 64-bit value of `z`.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn now() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
    }
    // No std clock on wasm32: the JS clock (milliseconds), enough for tokens per second.
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() / 1e3
    }
}

impl Generator {
    /// Uploads the weights, allocates a KV cache of `max_ctx` positions (checked against the
    /// device's limits) and builds the decode plan with the given sampling filters.
    pub fn new(ctx: &Context, model: Llama, max_ctx: usize, sampling: Sampling) -> Result<Self> {
        Self::with_kv_dtype(ctx, model, max_ctx, sampling, DType::F32)
    }

    /// As `new`, with the KV cache stored in `kv_dtype`: F32, or F16 (half the cache memory
    /// and decode-attention bandwidth; keys and values rounded to f16; needs SHADER_F16).
    pub fn with_kv_dtype(
        ctx: &Context,
        model: Llama,
        max_ctx: usize,
        sampling: Sampling,
        kv_dtype: DType,
    ) -> Result<Self> {
        if max_ctx == 0 {
            return Err(Error::Range {
                what: "the context".into(),
                value: "0".into(),
                range: "at least 1 (positions of the KV cache)".into(),
            });
        }
        sampling.check()?;
        let cache = KvCache::new(ctx, model.kv_config(max_ctx))?.with_dtype(kv_dtype)?;
        let mut shared = SharedBuffers::new();
        let lg = model.graph(&cache, 1, Head::Sample(sampling))?;
        let exe = GpuExecutor::with_shared(ctx, &lg.graph, &Plan::new(&lg.graph), &mut shared)?;
        Ok(Self { ctx: ctx.clone(), model, cache, shared, sampling, decode: (exe, lg), check_finite: true })
    }

    /// Whether every step reads its logits back and checks them for NaN and infinity (on by
    /// default: a NaN would otherwise be sampled as token 0 over and over). The check reads
    /// `vocab` floats per step besides the sampled id; turn it off only to measure the decode
    /// speed of a model already known to be sound.
    pub fn set_check_finite(&mut self, on: bool) {
        self.check_finite = on;
    }

    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// Positions the KV cache holds (prompt plus new tokens).
    pub fn max_context(&self) -> usize {
        self.cache.config().max_ctx
    }

    /// GPU bytes of the weights and the KV cache (intermediates not included).
    pub fn gpu_bytes(&self) -> u64 {
        self.shared.bytes()
    }

    /// GPU dispatches of one decode step (every kernel pass of every node).
    pub fn decode_dispatches(&self) -> usize {
        self.decode.0.steps()
    }

    /// GPU bytes of the decode plan's pooled intermediates.
    pub fn decode_scratch_bytes(&self) -> u64 {
        self.decode.0.plan().pooled_bytes()
    }

    /// Waits for the GPU to finish queued work (e.g. the weight uploads, before timing).
    pub async fn sync(&self) -> Result<()> {
        self.ctx.sync().await
    }

    fn check_prompt(&self, prompt: &[u32], max_tokens: usize) -> Result<()> {
        if prompt.is_empty() {
            return Err(Error::Usage("the prompt is empty: give at least one token of text".into()));
        }
        let vocab = self.model.config.vocab;
        if let Some(bad) = prompt.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::Usage(format!("token id {bad} is outside the model's vocabulary of {vocab}")));
        }
        let max = self.max_context();
        if prompt.len() + max_tokens > max {
            return Err(Error::Usage(format!(
                "the prompt ({} tokens) plus {max_tokens} new tokens exceeds the context of {max} positions",
                prompt.len()
            )));
        }
        Ok(())
    }

    fn prompt_executor(&mut self, tokens: usize, head: Head) -> Result<(GpuExecutor, LlamaGraph)> {
        let lg = self.model.graph(&self.cache, tokens, head)?;
        let exe = GpuExecutor::with_shared(&self.ctx, &lg.graph, &Plan::new(&lg.graph), &mut self.shared)?;
        Ok((exe, lg))
    }

    /// Appends `ids` to the cache through `exe` and returns the sampled next token.
    async fn step(
        cache: &mut KvCache,
        exe: &mut GpuExecutor,
        lg: &LlamaGraph,
        ids: &[u32],
        o: &GenerateOptions,
        step: usize,
    ) -> Result<u32> {
        exe.set_input("ids", ids)?;
        exe.set_runtime_f32(TEMPERATURE, o.temperature)?;
        exe.set_runtime_u32(SEED, seed_for(o.seed, step))?;
        cache.step(exe, ids.len())?;
        let next = lg.next.ok_or_else(|| Error::Usage("this graph samples no token".into()))?;
        match exe.read(next).await? {
            HostData::U32(v) if v.len() == 1 => Ok(v[0]),
            other => {
                Err(Error::Usage(format!("the sampler returned {:?} values instead of one token id", other.len())))
            }
        }
    }

    /// Checks the logits of the step just run at `pos` for NaN and infinity, and names the
    /// node that produced the first one (see `model::guard`).
    #[allow(clippy::too_many_arguments)]
    async fn guard_step(
        ctx: &Context,
        shared: &mut SharedBuffers,
        exe: &mut GpuExecutor,
        lg: &LlamaGraph,
        ids: &[u32],
        o: &GenerateOptions,
        step: usize,
        pos: usize,
    ) -> Result<()> {
        let logits = exe.read(lg.logits).await?.to_f32();
        let inputs = [("ids", HostData::U32(ids.to_vec()))];
        let runtime = [(POS, pos as u32), (TEMPERATURE, o.temperature.to_bits()), (SEED, seed_for(o.seed, step))];
        guard::check_output(&logits, "the logits", ctx, &lg.graph, shared, &inputs, &runtime).await
    }

    /// The logits [prompt.len() × vocab] of every prompt position, from a fresh cache. NaN or
    /// infinity in them is an `Error::NonFinite` naming the node that produced the first one.
    pub async fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        self.check_prompt(prompt, 0)?;
        self.cache.truncate(0)?;
        let (mut exe, lg) = self.prompt_executor(prompt.len(), Head::AllLogits)?;
        exe.set_input("ids", prompt)?;
        self.cache.step(&mut exe, prompt.len())?;
        let logits = exe.read(lg.logits).await?.to_f32();
        let inputs = [("ids", HostData::U32(prompt.to_vec()))];
        guard::check_output(&logits, "the logits", &self.ctx, &lg.graph, &mut self.shared, &inputs, &[(POS, 0)])
            .await?;
        Ok(logits)
    }

    /// GPU time of every node of one decode step at `position` (timestamp queries needed; it
    /// overwrites the KV cache row at `position`).
    pub async fn profile_decode(&mut self, position: usize) -> Result<Profile> {
        if position >= self.max_context() {
            return Err(Error::Usage(format!("position {position} is outside the context of {}", self.max_context())));
        }
        let exe = &mut self.decode.0;
        exe.set_input("ids", &[0u32])?;
        exe.set_runtime_u32(POS, position as u32)?;
        exe.run_profiled().await
    }

    /// Per-node GPU timestamps of one prompt pass over `prompt` from an empty cache (one
    /// pass per node, so slower than `generate`'s single submit): where prefill time goes.
    /// The cache is left empty.
    pub async fn profile_prefill(&mut self, prompt: &[u32]) -> Result<Profile> {
        self.check_prompt(prompt, 1)?;
        self.cache.truncate(0)?;
        let (mut exe, _) = self.prompt_executor(prompt.len(), Head::Sample(self.sampling))?;
        exe.set_input("ids", prompt)?;
        exe.set_runtime_f32(TEMPERATURE, 0.0)?;
        exe.set_runtime_u32(SEED, 0)?;
        self.cache.set_position(&mut exe, prompt.len())?;
        exe.run_profiled().await
    }

    /// Generates up to `o.max_tokens` tokens after `prompt` (from a fresh cache), calling
    /// `on_token` with each as soon as it is known (return false to stop). Stops after the
    /// model's end-of-sequence token.
    pub async fn generate(
        &mut self,
        prompt: &[u32],
        o: &GenerateOptions,
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Result<Generation> {
        o.check()?;
        self.check_prompt(prompt, o.max_tokens)?;
        let mut stats = GenerateStats { prompt_tokens: prompt.len(), ..Default::default() };
        let mut ids = Vec::new();
        if o.max_tokens == 0 {
            return Ok(Generation { ids, stopped_at_eos: false, stats });
        }
        self.cache.truncate(0)?;
        let t0 = now();
        let (mut exe, lg) = self.prompt_executor(prompt.len(), Head::Sample(self.sampling))?;
        let t1 = now();
        let mut token = Self::step(&mut self.cache, &mut exe, &lg, prompt, o, 0).await?;
        if self.check_finite {
            Self::guard_step(&self.ctx, &mut self.shared, &mut exe, &lg, prompt, o, 0, 0).await?;
        }
        drop(exe);
        let t2 = now();
        stats.prompt_setup_s = t1 - t0;
        stats.prefill_s = t2 - t1;
        let eos = self.model.config.eos_id;
        let stopped_at_eos = loop {
            ids.push(token);
            stats.generated_tokens = ids.len();
            if o.stop_at_eos && Some(token) == eos {
                break true;
            }
            if !on_token(token) || ids.len() >= o.max_tokens {
                break false;
            }
            let (exe, lg) = (&mut self.decode.0, &self.decode.1);
            let pos = self.cache.len();
            let last = token;
            token = Self::step(&mut self.cache, exe, lg, &[last], o, ids.len()).await?;
            if self.check_finite {
                Self::guard_step(&self.ctx, &mut self.shared, exe, lg, &[last], o, ids.len(), pos).await?;
            }
        };
        stats.decode_s = now() - t2;
        Ok(Generation { ids, stopped_at_eos, stats })
    }
}

/// Turns a stream of token ids into text pieces as they arrive, through the tokenizers
/// crate's incremental decoder: it holds text back while the last tokens end inside a UTF-8
/// character (byte-level BPE splits multi-byte characters over tokens). Special tokens are
/// left out.
pub struct TextStream<'a> {
    inner: tokenizers::DecodeStream<
        'a,
        tokenizers::models::ModelWrapper,
        tokenizers::normalizers::NormalizerWrapper,
        tokenizers::pre_tokenizers::PreTokenizerWrapper,
        tokenizers::processors::PostProcessorWrapper,
        tokenizers::decoders::DecoderWrapper,
    >,
}

impl<'a> TextStream<'a> {
    pub fn new(tokenizer: &'a super::Tokenizer) -> Self {
        Self { inner: tokenizer.inner().decode_stream(true) }
    }

    /// The text `id` completes (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        let piece = self.inner.step(id).map_err(|e| Error::Usage(format!("cannot decode token id {id}: {e}")))?;
        Ok(piece.unwrap_or_default())
    }
}
