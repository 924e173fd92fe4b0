//! Llama-family decoder (SmolLM2, Llama 2/3 layout in GGUF): loads weights and builds graphs,
//! nothing else. Running them is `model::generate`'s job.
//!
//! One model holds its weights once and builds two graphs over them: a prompt graph for T
//! tokens and a one-token decode graph replayed for every generated token. Both append to the
//! same per-layer KV cache (`KvCache`, graph state) at the position in runtime slot `POS`, so
//! no plan is rebuilt while decoding.
//!
//! Per layer: RMSNorm → one q/k/v projection (the three weights stacked at load) → `rope_kv`
//! (RoPE of q and k, adjacent pairs: llama.cpp's converter permuted q and k for it; k and v
//! appended to the cache; one kernel) → causal grouped-query attention over the cache →
//! output projection → residual; RMSNorm → SwiGLU feed-forward → residual. Then the final
//! RMSNorm and the LM head (the token embedding when the file ties them).

use super::config::LlamaConfig;
use super::gguf::Gguf;
use super::weights::{Builder, Weights};
use crate::error::{Error, Result};
use crate::graph::{Graph, LinearFusion, NodeId, RopeMode, SampleOptions};
use crate::kv::{KvCache, KvCacheConfig, Rotary};
use crate::tensor::DType;

/// Runtime slot: position of the graph's first token (also the KV cache's slot).
pub const POS: u32 = 0;
/// Runtime slot: sampling temperature (f32 bits; 0 = greedy).
pub const TEMPERATURE: u32 = 1;
/// Runtime slot: sampling seed (changed every step).
pub const SEED: u32 = 2;

/// Sampling settings fixed in a graph (temperature and seed are runtime slots).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Keep the k most likely tokens (0: all).
    pub top_k: u32,
    /// Then the smallest set reaching this probability (1: all).
    pub top_p: f32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { top_k: 0, top_p: 1.0 }
    }
}

/// What a graph computes at its end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Head {
    /// Logits of the last position [1, vocab] and a sampled next token [1] (generation).
    Sample(Sampling),
    /// Logits of every position [T, vocab] (conformance checks, `webformer forward`).
    AllLogits,
}

/// A built graph and its outputs.
pub struct LlamaGraph {
    pub graph: Graph,
    /// [1, vocab] (last position) or [T, vocab] (`Head::AllLogits`).
    pub logits: NodeId,
    /// [1] u32: the sampled (or argmax) next token, with `Head::Sample`.
    pub next: Option<NodeId>,
}

/// A Llama decoder's configuration and host weights.
pub struct Llama {
    pub config: LlamaConfig,
    weights: Weights,
}

/// Per-layer tensors, in GGUF names (`blk.{n}.{name}.weight`).
const LAYER_TENSORS: [&str; 9] =
    ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"];

impl Llama {
    /// Reads the config and copies every tensor the decoder uses out of a parsed GGUF,
    /// checking names and shapes. `progress(done, total)` is called after each tensor.
    pub fn from_gguf(gguf: &Gguf, progress: &mut dyn FnMut(usize, usize)) -> Result<Self> {
        let config = LlamaConfig::from_gguf(gguf)?;
        let file = gguf.file();
        if config.rope_dim != config.head_dim {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "rotates {} of {} dimensions per head; partial RoPE is not supported",
                    config.rope_dim, config.head_dim
                ),
            });
        }
        let mut names = vec!["token_embd.weight".to_string(), "output_norm.weight".to_string()];
        if !config.tied_embeddings {
            names.push("output.weight".into());
        }
        for l in 0..config.n_layers {
            names.extend(LAYER_TENSORS.iter().map(|t| format!("blk.{l}.{t}.weight")));
        }
        let mut weights = Weights::new(file);
        for (i, name) in names.iter().enumerate() {
            weights.insert(name, gguf.tensor(name)?);
            progress(i + 1, names.len());
        }
        let model = Self { config, weights };
        model.check_shapes()?;
        model.stack_qkv()
    }

    /// A model from a config and weights made elsewhere (e.g. [`super::synthetic`]), with the
    /// same shape checks as a file gets.
    pub fn from_parts(config: LlamaConfig, weights: Weights) -> Result<Self> {
        let model = Self { config, weights };
        model.check_shapes()?;
        model.stack_qkv()
    }

    /// Replaces each layer's Q, K and V weights by one `attn_qkv` weight
    /// [(heads + 2·kv_heads)·head_dim, hidden] holding their rows in that order, so that one
    /// projection computes all three (quantized blocks are kept as they are).
    fn stack_qkv(mut self) -> Result<Self> {
        for l in 0..self.config.n_layers {
            let p = |n: &str| format!("blk.{l}.{n}.weight");
            self.weights.concat_rows(&p("attn_qkv"), &[&p("attn_q"), &p("attn_k"), &p("attn_v")])?;
        }
        Ok(self)
    }

    fn check_shapes(&self) -> Result<()> {
        let c = &self.config;
        let (d, q, kv) = (c.hidden, c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
        let w = &self.weights;
        let why = "a Llama decoder with this file's hyperparameters";
        w.expect("token_embd.weight", &[c.vocab, d], why)?;
        w.expect("output_norm.weight", &[d], why)?;
        if !c.tied_embeddings {
            w.expect("output.weight", &[c.vocab, d], why)?;
        }
        for l in 0..c.n_layers {
            let shapes: [(&str, Vec<usize>); 9] = [
                ("attn_norm", vec![d]),
                ("attn_q", vec![q, d]),
                ("attn_k", vec![kv, d]),
                ("attn_v", vec![kv, d]),
                ("attn_output", vec![d, q]),
                ("ffn_norm", vec![d]),
                ("ffn_gate", vec![c.ffn, d]),
                ("ffn_up", vec![c.ffn, d]),
                ("ffn_down", vec![d, c.ffn]),
            ];
            for (t, shape) in shapes {
                w.expect(&format!("blk.{l}.{t}.weight"), &shape, why)?;
            }
        }
        Ok(())
    }

    /// Host bytes of the weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }

    /// The KV cache shape this model needs for `max_ctx` positions (slot `POS`).
    pub fn kv_config(&self, max_ctx: usize) -> KvCacheConfig {
        let c = &self.config;
        KvCacheConfig { layers: c.n_layers, max_ctx, kv_heads: c.n_kv_heads, head_dim: c.head_dim, slot: POS }
    }

    /// The graph for `tokens` new tokens at positions POS..POS+tokens, appending to `cache`.
    /// Input "ids" [tokens] u32.
    pub fn graph(&self, cache: &KvCache, tokens: usize, head: Head) -> Result<LlamaGraph> {
        let c = &self.config;
        if tokens == 0 {
            return Err(Error::Usage("a Llama graph needs at least one token".into()));
        }
        let mut b = Builder::new(&self.weights);
        let ids = b.g.input("ids", &[tokens], DType::U32)?;
        let table = b.w("token_embd.weight")?;
        let mut h = b.g.embedding(table, ids)?; // [t, hidden]
        for l in 0..c.n_layers {
            h = self.attention_block(&mut b, cache, l, h, tokens)?;
            h = self.ffn_block(&mut b, l, h)?;
        }
        let last = match head {
            Head::Sample(_) if tokens > 1 => b.g.rows(h, tokens - 1, 1)?,
            _ => h,
        };
        let norm = b.w("output_norm.weight")?;
        let last = b.g.rms_norm(last, norm, c.rms_eps)?;
        let lm = b.w(if c.tied_embeddings { "token_embd.weight" } else { "output.weight" })?;
        let logits = b.g.linear(last, lm, None, None)?; // [1 or t, vocab]
        b.g.output(logits)?;
        let next = match head {
            Head::Sample(s) => {
                let o =
                    SampleOptions { top_k: s.top_k, top_p: s.top_p, temperature_slot: TEMPERATURE, seed_slot: SEED };
                let next = b.g.sample(logits, o)?;
                b.g.output(next)?;
                Some(next)
            }
            Head::AllLogits => None,
        };
        Ok(LlamaGraph { graph: b.g, logits, next })
    }

    /// h + attention(rms_norm(h)) for layer `l`, through the KV cache.
    fn attention_block(&self, b: &mut Builder, cache: &KvCache, l: usize, h: NodeId, t: usize) -> Result<NodeId> {
        let c = &self.config;
        let p = |n: &str| format!("blk.{l}.{n}.weight");
        let w = b.w(&p("attn_norm"))?;
        let x = b.g.rms_norm(h, w, c.rms_eps)?;
        let wqkv = b.w(&p("attn_qkv"))?;
        let qkv = b.g.linear(x, wqkv, None, None)?; // [t, (heads + 2·kv_heads)·hd]
        let rope = Rotary { mode: RopeMode::Adjacent, theta: c.rope_theta };
        let a = cache.attend_qkv(&mut b.g, l, qkv, c.n_heads, rope, true)?; // [t, heads, hd]
        let a = b.g.reshape(a, &[t, c.n_heads * c.head_dim])?;
        let wo = b.w(&p("attn_output"))?;
        b.g.linear_with(a, wo, LinearFusion { residual: Some(h), ..Default::default() })
    }

    /// h + SwiGLU(rms_norm(h)) for layer `l`: down(silu(gate(x)) · up(x)), the gate/up pair
    /// and the down projection with its residual each one fused linear node.
    fn ffn_block(&self, b: &mut Builder, l: usize, h: NodeId) -> Result<NodeId> {
        let p = |n: &str| format!("blk.{l}.{n}.weight");
        let w = b.w(&p("ffn_norm"))?;
        let (wg, wu, wd) = (b.w(&p("ffn_gate"))?, b.w(&p("ffn_up"))?, b.w(&p("ffn_down"))?);
        // The norm stays its own node: folded into the pair as a prologue (LinearFusion::rms)
        // the decode step took 30 launches fewer but the pair's GEMV ran 1.7x as long on
        // lavapipe (measured with `bench generate`), more than the launches saved.
        let x = b.g.rms_norm(h, w, self.config.rms_eps)?;
        let f = b.g.linear_with(x, wg, LinearFusion { up: Some(wu), ..Default::default() })?; // [t, ffn]
        b.g.linear_with(f, wd, LinearFusion { residual: Some(h), ..Default::default() })
    }
}
