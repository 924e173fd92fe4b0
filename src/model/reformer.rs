//! Reformer (Kitaev et al. 2020) as Hugging Face's `ReformerModel` / `ReformerModelWithLMHead`:
//! word + axial (or plain) position embeddings, reversible residual layers over two streams
//! (Y1 = X1 + Attention(X2), Y2 = X2 + FeedForward(Y1), both starting as the embeddings), LSH
//! or local self-attention per `attn_layers`, then LayerNorm over the two streams concatenated
//! (2·hidden wide) and, for the LM, a linear head. Checkpoint names are HF's.
//!
//! Lengths: like HF in evaluation, ids longer than the smallest chunk are padded (with
//! `pad_token_id`, masked out) to a multiple of the chunks' least common multiple; outputs are
//! cut back to the ids given.
//!
//! Rotations: HF draws the LSH random rotations from torch's generator on every call. To match
//! it exactly, pass them (`Rotations::from_safetensors`, tensors `layers.{i}.rotations` of shape
//! (heads, head_size, num_hashes, rotation_size / 2)). Otherwise `Rotations::seeded` draws them
//! from our own generator: standard normals by Box-Muller over SplitMix64, seeded with
//! `hash_seed` (0 when unset) + 0x9E3779B97F4A7C15 · (layer + 1), in the tensor's row-major
//! order; reproducible across runs and machines, but not torch's numbers.
//!
//! Feed-forward chunking: with `chunk_size_feed_forward` > 0 the feed-forward runs over row
//! chunks of that many tokens (rows, then LayerNorm and both linears, then the chunks' outputs
//! concatenated), so its [tokens, feed_forward_size] intermediate never exists whole: the
//! planner keeps one chunk's at a time. The result is the same as unchunked (every op is per
//! row), as in HF's `apply_chunking_to_forward`; unlike HF, a length that is not a multiple of
//! the chunk is allowed (the last chunk is shorter).
//!
//! Decoding (`Reformer::generate_greedy`) is cached by default, as HF's
//! `generate(..., use_cache=True)`: the prompt is one forward that also fills per-layer caches,
//! then each token is a one-row step over them (`graph::lsh_decode` writes out what HF computes
//! there). `Decoding::Uncached` recomputes the forward over the prefix every step, as
//! `generate(..., use_cache=False)`. The two differ by design in LSH layers: HF's cached window
//! around the new query wraps within each round's sorted cache, its uncached forward's chunks
//! wrap across rounds and see the padding and the future positions' sorted slots. Each mode
//! matches HF's same mode. HF's cached steps need `chunk_size_feed_forward` 0 or 1 (it chunks
//! the one-row feed-forward and fails otherwise) and fewer heads than the LSH chunk length (it
//! re-hashes its gathered window when the heads reach it, and fails); ours run any (the
//! feed-forward is per row, and the cached buckets are HF's in every case it runs). Cached
//! steps take attention windows of up to `graph::DECODE_MAX_WINDOW` positions.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::safetensors::Safetensors;
use super::weights::{Builder, Weights};
use crate::error::{Error, Result};
use crate::exec::{GpuExecutor, SharedBuffers};
use crate::gpu::Context;
use crate::graph::plan::Plan;
use crate::graph::{
    Activation, Buckets, DecodeHash, DecodeLocal, DecodeOptions, Graph, LocalOptions, LshOptions, NodeId,
    DECODE_MAX_WINDOW,
};
use crate::tensor::{DType, HostData};

/// The fields of HF's `ReformerConfig` (config.json) this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct ReformerConfig {
    /// "lsh" or "local" per layer.
    pub attn_layers: Vec<String>,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub attention_head_size: usize,
    /// Inner width of the feed-forward.
    pub feed_forward_size: usize,
    /// Tokens per feed-forward chunk; 0 runs the feed-forward over all rows at once.
    #[serde(default)]
    pub chunk_size_feed_forward: usize,
    /// "relu", "gelu" (erf), "gelu_new" or "silu".
    pub hidden_act: String,
    /// An even count, or a list of even factors; must be set (HF picks one from the length
    /// otherwise, which would make the model depend on the input).
    pub num_buckets: Option<serde_json::Value>,
    /// Hashing rounds.
    pub num_hashes: usize,
    pub lsh_attn_chunk_length: usize,
    pub lsh_num_chunks_before: usize,
    pub lsh_num_chunks_after: usize,
    pub local_attn_chunk_length: usize,
    pub local_num_chunks_before: usize,
    pub local_num_chunks_after: usize,
    /// Causal attention.
    pub is_decoder: bool,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    /// Axial position embeddings (else a plain [max_position_embeddings, hidden] table).
    #[serde(default = "yes")]
    pub axial_pos_embds: bool,
    #[serde(default)]
    pub axial_pos_shape: Vec<usize>,
    #[serde(default)]
    pub axial_pos_embds_dim: Vec<usize>,
    pub layer_norm_eps: f32,
    /// The id padding is filled with.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Generation stops after this id, when set.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// Seeds our own rotation generator (HF seeds torch with it).
    #[serde(default)]
    pub hash_seed: Option<u64>,
    /// "ReformerModelWithLMHead" when the checkpoint has the LM head.
    #[serde(default)]
    pub architectures: Vec<String>,
}

fn yes() -> bool {
    true
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl ReformerConfig {
    /// Parses config.json; `file` names it in errors.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Self> {
        let c: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Model { file: file.into(), detail: format!("is not a Reformer config: {e}") })?;
        c.check(file)?;
        Ok(c)
    }

    fn check(&self, file: &str) -> Result<()> {
        let err = |detail: String| Err(Error::Model { file: file.into(), detail });
        if self.attn_layers.is_empty() || self.attn_layers.iter().any(|a| a != "lsh" && a != "local") {
            return err(format!("attn_layers must list 'lsh' and 'local' layers, got {:?}", self.attn_layers));
        }
        if self.has_lsh() {
            self.buckets().map_err(|e| Error::Model { file: file.into(), detail: e.to_string() })?;
        }
        if self.axial_pos_embds {
            let prod: usize = self.axial_pos_shape.iter().product();
            let sum: usize = self.axial_pos_embds_dim.iter().sum();
            if self.axial_pos_shape.len() != 2 || self.axial_pos_embds_dim.len() != 2 || sum != self.hidden_size {
                return err(format!(
                    "axial position embeddings need two factors of shape and dims summing to hidden_size {}, got {:?} and {:?}",
                    self.hidden_size, self.axial_pos_shape, self.axial_pos_embds_dim
                ));
            }
            if prod < self.max_position_embeddings {
                return err(format!(
                    "axial_pos_shape {:?} covers {prod} positions, fewer than max_position_embeddings {}",
                    self.axial_pos_shape, self.max_position_embeddings
                ));
            }
        }
        if self.lsh_attn_chunk_length == 0 || self.local_attn_chunk_length == 0 {
            return err("chunk lengths must be at least 1".into());
        }
        Ok(())
    }

    fn has_lsh(&self) -> bool {
        self.attn_layers.iter().any(|a| a == "lsh")
    }

    /// HF's `num_buckets` as factors.
    pub fn buckets(&self) -> Result<Buckets> {
        let v = self.num_buckets.as_ref().ok_or_else(|| {
            Error::Usage(
                "num_buckets is not set in config.json; set it explicitly (HF would pick one from the input length)"
                    .into(),
            )
        })?;
        let factors: Option<Vec<usize>> = match v {
            serde_json::Value::Array(a) => a.iter().map(|x| x.as_u64().map(|x| x as usize)).collect(),
            other => other.as_u64().map(|x| vec![x as usize]),
        };
        Buckets::new(
            &factors.ok_or_else(|| Error::Usage(format!("num_buckets must be an int or a list of ints, got {v}")))?,
        )
    }

    /// The layer types present decide the padding unit, as HF's `_get_least_common_mult_chunk_len`.
    fn chunk_lengths(&self) -> Vec<usize> {
        let mut v = Vec::new();
        if self.has_lsh() {
            v.push(self.lsh_attn_chunk_length);
        }
        if self.attn_layers.iter().any(|a| a == "local") {
            v.push(self.local_attn_chunk_length);
        }
        v
    }

    /// The length HF runs `t` ids at: padded to a multiple of the chunks' least common
    /// multiple when longer than the smallest chunk.
    pub fn padded_length(&self, t: usize) -> usize {
        let c = self.chunk_lengths();
        let lcm = c.iter().fold(1, |a, &b| a / gcd(a, b) * b);
        let min = c.iter().copied().min().unwrap_or(1);
        if t > min && !t.is_multiple_of(lcm) {
            t.div_ceil(lcm) * lcm
        } else {
            t
        }
    }

    /// True for `ReformerModelWithLMHead` checkpoints.
    pub fn has_lm_head(&self) -> bool {
        self.architectures.iter().any(|a| a == "ReformerModelWithLMHead")
    }

    fn activation(&self) -> Result<Activation> {
        Ok(match self.hidden_act.as_str() {
            "relu" => Activation::Relu,
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            other => {
                return Err(Error::Usage(format!(
                    "Reformer activation '{other}' is not supported (relu, gelu, gelu_new, silu)"
                )))
            }
        })
    }

    /// The shape of HF's google/reformer-enwik8 (NOTES: 12 layers, LSH at 2, 6 and 10 and local
    /// elsewhere, hidden 1024, 8 heads of 128, 4 hashes, 512 buckets, LSH chunks of 256 and
    /// local ones of 128 each seeing the chunk before, feed-forward 4096 relu, 258 byte ids,
    /// axial positions [128, 512] of widths [256, 768], 65,536 positions, causal LM), with a
    /// feed-forward chunk of `ff_chunk` rows (0: none).
    pub fn enwik8(ff_chunk: usize) -> Self {
        let attn_layers = (0..12).map(|i| if i % 4 == 2 { "lsh" } else { "local" }.to_string()).collect();
        Self {
            attn_layers,
            hidden_size: 1024,
            num_attention_heads: 8,
            attention_head_size: 128,
            feed_forward_size: 4096,
            chunk_size_feed_forward: ff_chunk,
            hidden_act: "relu".into(),
            num_buckets: Some(serde_json::json!(512)),
            num_hashes: 4,
            lsh_attn_chunk_length: 256,
            lsh_num_chunks_before: 1,
            lsh_num_chunks_after: 0,
            local_attn_chunk_length: 128,
            local_num_chunks_before: 1,
            local_num_chunks_after: 0,
            is_decoder: true,
            vocab_size: bytes::VOCAB,
            max_position_embeddings: 65536,
            axial_pos_embds: true,
            axial_pos_shape: vec![128, 512],
            axial_pos_embds_dim: vec![256, 768],
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            eos_token_id: None,
            hash_seed: None,
            architectures: vec!["ReformerModelWithLMHead".into()],
        }
    }

    /// Shape of layer i's rotations: (heads, head_size, num_hashes, rotation_size / 2).
    pub fn rotation_shape(&self) -> Result<[usize; 4]> {
        Ok([self.num_attention_heads, self.attention_head_size, self.num_hashes, self.buckets()?.rotation_half()])
    }
}

/// LSH rotations by layer index (in `attn_layers`).
#[derive(Clone, Debug, Default)]
pub struct Rotations {
    by_layer: BTreeMap<usize, Vec<f32>>,
}

impl Rotations {
    /// Reads `layers.{i}.rotations` for every LSH layer of `config` present in `st`, checking
    /// shapes. A layer without a tensor is an error only when it hashes (see `Reformer::run`).
    pub fn from_safetensors(config: &ReformerConfig, st: &Safetensors) -> Result<Self> {
        let shape = config.rotation_shape()?;
        let mut by_layer = BTreeMap::new();
        for (i, _) in config.attn_layers.iter().enumerate().filter(|(_, a)| *a == "lsh") {
            let name = format!("layers.{i}.rotations");
            if st.info(&name).is_none() {
                continue;
            }
            let t = st.tensor(&name)?;
            if t.shape != shape {
                return Err(Error::Model {
                    file: st.file().into(),
                    detail: format!("tensor '{name}' has shape {:?}; the config needs {shape:?} (heads, head_size, num_hashes, rotation_size/2)", t.shape),
                });
            }
            by_layer.insert(i, t.data.to_f32());
        }
        Ok(Self { by_layer })
    }

    /// Our own reproducible rotations for every LSH layer (see the module docs).
    pub fn seeded(config: &ReformerConfig) -> Result<Self> {
        let shape = config.rotation_shape()?;
        let n: usize = shape.iter().product();
        let base = config.hash_seed.unwrap_or(0);
        let by_layer = config
            .attn_layers
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "lsh")
            .map(|(i, _)| (i, normals(base.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1)), n)))
            .collect();
        Ok(Self { by_layer })
    }

    /// Layer i's rotations, if any.
    pub fn layer(&self, i: usize) -> Option<&[f32]> {
        self.by_layer.get(&i).map(Vec::as_slice)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` standard normals: Box-Muller on pairs of 53-bit uniforms from SplitMix64.
fn normals(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1 = ((splitmix64(&mut s) >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
        let u2 = (splitmix64(&mut s) >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let a = 2.0 * std::f64::consts::PI * u2;
        out.push((r * a.cos()) as f32);
        out.push((r * a.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// A built Reformer graph. Inputs: "ids" [T'] u32 (padded), "mask" [T'] u32 when padded, and
/// "layers.{i}.rotations" per hashing LSH layer.
pub struct ReformerGraph {
    pub graph: Graph,
    /// [T, vocab] logits (LM head) or [T, 2·hidden] last hidden state, T the ids given.
    pub output: NodeId,
    /// The padded length T'.
    pub padded: usize,
    /// LSH layers whose rotations are inputs: those that hash at this length, and every LSH
    /// layer of a graph that fills or reads the decoding caches.
    pub hashing_layers: Vec<usize>,
}

/// The runtime slot holding the position where a cached step (or the prompt, at 0) writes its
/// rows into the decoding caches.
const CACHE_SLOT: u32 = 0;

/// How the prompt's graph fills the decoding caches: their rows, and whether the prompt was
/// padded (then its hashing gave padding tokens a bucket of their own, and HF's round offsets
/// are count + 1 apart).
#[derive(Clone, Copy)]
struct Fill {
    rows: usize,
    padded: bool,
}

/// How `Reformer::generate_greedy_with` decodes (see `Reformer::generate_greedy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// The prompt once, then one token per step over cached states and buckets: HF's
    /// `generate(..., use_cache=True)` (its `past_buckets_states`).
    Cached,
    /// A full forward over the prefix per step: HF's `generate(..., use_cache=False)`.
    Uncached,
}

/// A Reformer checkpoint: config and host weights.
pub struct Reformer {
    pub config: ReformerConfig,
    weights: Weights,
    /// The leading `reformer.` of LM checkpoints' encoder names, or "".
    prefix: &'static str,
}

impl Reformer {
    /// Copies the tensors out of a checkpoint (HF names), checking their shapes.
    pub fn from_safetensors(config: ReformerConfig, st: &Safetensors) -> Result<Self> {
        let prefix = if st.names().iter().any(|n| n.starts_with("reformer.")) { "reformer." } else { "" };
        let mut weights = Weights::new(st.file());
        for (name, shape) in Self::tensors(&config, prefix) {
            weights.insert(&name, st.tensor(&name)?);
            weights.expect(&name, &shape, "a Reformer with this config.json")?;
        }
        Ok(Self { config, weights, prefix })
    }

    /// A model of `config`'s shapes with seeded random weights (for benchmarks: speed does not
    /// depend on the values): LayerNorms of ones and zeros, the rest uniform in ±0.5/√fan_in
    /// (so activations stay O(1) over the layers), position tables uniform in ±0.05.
    pub fn synthetic(config: ReformerConfig, seed: u64) -> Result<Self> {
        config.check("synthetic Reformer config")?;
        let prefix = if config.has_lm_head() { "reformer." } else { "" };
        let mut weights = Weights::new(&format!("synthetic Reformer (seed {seed})"));
        let mut state = seed;
        for (name, shape) in Self::tensors(&config, prefix) {
            let n: usize = shape.iter().product();
            let data = if name.contains("layer_norm") {
                vec![if name.ends_with("weight") { 1.0 } else { 0.0 }; n]
            } else {
                let fan_in = if name.contains("position_embeddings") { 400.0 } else { shape[shape.len() - 1] as f64 };
                let a = 0.5 / fan_in.sqrt();
                (0..n)
                    .map(|_| (((splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * a) as f32)
                    .collect()
            };
            weights.insert(&name, super::HostTensor { shape, data: HostData::F32(data) });
        }
        Ok(Self { config, weights, prefix })
    }

    fn tensors(c: &ReformerConfig, p: &str) -> Vec<(String, Vec<usize>)> {
        let (h, a, f) = (c.hidden_size, c.num_attention_heads * c.attention_head_size, c.feed_forward_size);
        let mut t = vec![(format!("{p}embeddings.word_embeddings.weight"), vec![c.vocab_size, h])];
        if c.axial_pos_embds {
            let (s, d) = (&c.axial_pos_shape, &c.axial_pos_embds_dim);
            t.push((format!("{p}embeddings.position_embeddings.weights.0"), vec![s[0], 1, d[0]]));
            t.push((format!("{p}embeddings.position_embeddings.weights.1"), vec![1, s[1], d[1]]));
        } else {
            t.push((format!("{p}embeddings.position_embeddings.embedding.weight"), vec![c.max_position_embeddings, h]));
        }
        for (l, kind) in c.attn_layers.iter().enumerate() {
            let q = format!("{p}encoder.layers.{l}.");
            t.push((format!("{q}attention.layer_norm.weight"), vec![h]));
            t.push((format!("{q}attention.layer_norm.bias"), vec![h]));
            let projections: &[&str] = if kind == "lsh" { &["query_key", "value"] } else { &["query", "key", "value"] };
            for n in projections {
                t.push((format!("{q}attention.self_attention.{n}.weight"), vec![a, h]));
            }
            t.push((format!("{q}attention.output.dense.weight"), vec![h, a]));
            t.push((format!("{q}feed_forward.layer_norm.weight"), vec![h]));
            t.push((format!("{q}feed_forward.layer_norm.bias"), vec![h]));
            t.push((format!("{q}feed_forward.dense.dense.weight"), vec![f, h]));
            t.push((format!("{q}feed_forward.dense.dense.bias"), vec![f]));
            t.push((format!("{q}feed_forward.output.dense.weight"), vec![h, f]));
            t.push((format!("{q}feed_forward.output.dense.bias"), vec![h]));
        }
        t.push((format!("{p}encoder.layer_norm.weight"), vec![2 * h]));
        t.push((format!("{p}encoder.layer_norm.bias"), vec![2 * h]));
        if c.has_lm_head() {
            t.push(("lm_head.decoder.weight".into(), vec![c.vocab_size, 2 * h]));
            t.push(("lm_head.decoder.bias".into(), vec![c.vocab_size]));
        }
        t
    }

    fn w(&self, b: &mut Builder, name: &str) -> Result<NodeId> {
        b.w(&format!("{}{name}", self.prefix))
    }

    /// The graph for `t` ids.
    pub fn graph(&self, t: usize) -> Result<ReformerGraph> {
        self.build(t, false, None)
    }

    /// The graph for `t` ids; with `all_padded`, the output keeps all T' padded rows (so that
    /// one graph serves every length with the same padded length, the mask telling them apart).
    /// With `cache` (rows), it also fills the decoding caches with the prompt's rows (see
    /// `generate_cached`): every LSH layer then takes its rotations as an input.
    fn build(&self, t: usize, all_padded: bool, cache: Option<usize>) -> Result<ReformerGraph> {
        let c = &self.config;
        if t == 0 {
            return Err(Error::Usage("Reformer needs at least one id".into()));
        }
        let tp = c.padded_length(t);
        if tp > c.max_position_embeddings {
            return Err(Error::Usage(format!(
                "{t} ids (padded to {tp}) exceed the model's max_position_embeddings {}",
                c.max_position_embeddings
            )));
        }
        let mut b = Builder::new(&self.weights);
        let ids = b.g.input("ids", &[tp], DType::U32)?;
        let mask = if tp > t { Some(b.g.input("mask", &[tp], DType::U32)?) } else { None };
        let we = self.w(&mut b, "embeddings.word_embeddings.weight")?;
        let x = b.g.embedding(we, ids)?;
        let pos = self.positions(&mut b, tp)?;
        let emb = b.g.add(x, pos)?; // [T', h]
        let (mut x1, mut x2) = (emb, emb);
        let mut hashing_layers = Vec::new();
        for (l, kind) in c.attn_layers.iter().enumerate() {
            let hashes = kind == "lsh" && tp > c.lsh_attn_chunk_length;
            if hashes || (kind == "lsh" && cache.is_some()) {
                hashing_layers.push(l);
            }
            let fill = cache.map(|rows| Fill { rows, padded: tp > t });
            let att = self.attention(&mut b, l, kind == "lsh", x2, tp, mask, fill)?;
            x1 = b.g.add(x1, att)?;
            let ff = self.feed_forward(&mut b, l, x1, tp)?;
            x2 = b.g.add(x2, ff)?;
        }
        let both = self.concat(&mut b, x1, x2, tp)?; // [T', 2h]
        let (w, bias) = (self.w(&mut b, "encoder.layer_norm.weight")?, self.w(&mut b, "encoder.layer_norm.bias")?);
        let mut out = b.g.layer_norm(both, w, bias, c.layer_norm_eps)?;
        if tp > t && !all_padded {
            out = b.g.rows(out, 0, t)?;
        }
        if c.has_lm_head() {
            let (w, bias) = (b.w("lm_head.decoder.weight")?, b.w("lm_head.decoder.bias")?);
            out = b.g.linear(out, w, Some(bias), None)?;
        }
        b.g.output(out)?;
        Ok(ReformerGraph { graph: b.g, output: out, padded: tp, hashing_layers })
    }

    /// Position embeddings of positions 0..tp as a constant [tp, h]: axial ones are
    /// concat(weights.0[p / s1], weights.1[p % s1]) (HF's broadcast-and-reshape).
    fn positions(&self, b: &mut Builder, tp: usize) -> Result<NodeId> {
        let h = self.config.hidden_size;
        let table = self.position_rows(0, tp)?;
        b.g.weight(&format!("reformer.positions.{tp}"), &[tp, h], table)
    }

    /// Position embeddings of positions from..to, [to - from, h] row-major.
    fn position_rows(&self, from: usize, to: usize) -> Result<Vec<f32>> {
        let c = &self.config;
        let h = c.hidden_size;
        let get = |n: &str| {
            let name = format!("{}{n}", self.prefix);
            self.weights.get(&name).map(|w| w.data.to_f32()).ok_or_else(|| Error::Usage(format!("missing {name}")))
        };
        let mut table = vec![0f32; (to - from) * h];
        if c.axial_pos_embds {
            let (w0, w1) =
                (get("embeddings.position_embeddings.weights.0")?, get("embeddings.position_embeddings.weights.1")?);
            let (s1, d0, d1) = (c.axial_pos_shape[1], c.axial_pos_embds_dim[0], c.axial_pos_embds_dim[1]);
            for (i, p) in (from..to).enumerate() {
                table[i * h..][..d0].copy_from_slice(&w0[(p / s1) * d0..][..d0]);
                table[i * h + d0..][..d1].copy_from_slice(&w1[(p % s1) * d1..][..d1]);
            }
        } else {
            table.copy_from_slice(&get("embeddings.position_embeddings.embedding.weight")?[from * h..to * h]);
        }
        Ok(table)
    }

    /// [T', h] -> [T', H·d] for a projection `name` of layer l.
    fn project(&self, b: &mut Builder, l: usize, name: &str, x: NodeId) -> Result<NodeId> {
        let w = self.w(b, &format!("encoder.layers.{l}.attention.self_attention.{name}.weight"))?;
        b.g.matmul_t(x, w)
    }

    /// [T', H·d] -> [H, T', d].
    fn split_heads(&self, b: &mut Builder, y: NodeId, tp: usize) -> Result<NodeId> {
        let c = &self.config;
        let y = b.g.reshape(y, &[tp, c.num_attention_heads, c.attention_head_size])?;
        b.g.permute(y, &[1, 0, 2])
    }

    /// [T', h] -> [H, T', d] for a projection `name` of layer l; with `cache`, its [T', H·d]
    /// rows are also written into that state.
    fn heads(
        &self,
        b: &mut Builder,
        l: usize,
        name: &str,
        x: NodeId,
        tp: usize,
        cache: Option<(&str, usize)>,
    ) -> Result<NodeId> {
        let y = self.project(b, l, name, x)?;
        if let Some((what, rows)) = cache {
            let st = self.cache_state(b, l, what, rows, y)?;
            b.g.write_rows(st, y, CACHE_SLOT)?;
        }
        self.split_heads(b, y, tp)
    }

    /// Layer l's cache state `what` ("qk", "k", "v", "buckets") of `rows` rows, as wide as `like`.
    fn cache_state(&self, b: &mut Builder, l: usize, what: &str, rows: usize, like: NodeId) -> Result<NodeId> {
        let cols = b.g.node(like).shape[1];
        b.g.state(&format!("reformer.cache.{l}.{what}"), &[rows, cols], DType::F32)
    }

    /// LayerNorm, then LSH or local self-attention, then the output projection: [T', h].
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        b: &mut Builder,
        l: usize,
        lsh: bool,
        x: NodeId,
        tp: usize,
        mask: Option<NodeId>,
        fill: Option<Fill>,
    ) -> Result<NodeId> {
        let c = &self.config;
        let p = format!("encoder.layers.{l}.attention");
        let (w, bias) = (self.w(b, &format!("{p}.layer_norm.weight"))?, self.w(b, &format!("{p}.layer_norm.bias"))?);
        let h = b.g.layer_norm(x, w, bias, c.layer_norm_eps)?;
        let rows = fill.map(|f| f.rows);
        let att = if lsh {
            let hashes = tp > c.lsh_attn_chunk_length;
            let rot = if hashes || fill.is_some() {
                Some(b.g.input(&format!("layers.{l}.rotations"), &c.rotation_shape()?, DType::F32)?)
            } else {
                None
            };
            let qk_rows = self.project(b, l, "query_key", h)?;
            if let (Some(f), Some(rot)) = (fill, rot) {
                self.fill_lsh_cache(b, l, qk_rows, rot, f, hashes)?;
            }
            let qk = self.split_heads(b, qk_rows, tp)?;
            let v = self.heads(b, l, "value", h, tp, rows.map(|r| ("v", r)))?;
            if let (true, Some(rot)) = (hashes, rot) {
                let o = LshOptions {
                    buckets: c.buckets()?,
                    rounds: c.num_hashes,
                    chunk: c.lsh_attn_chunk_length,
                    before: c.lsh_num_chunks_before,
                    after: c.lsh_num_chunks_after,
                    causal: c.is_decoder,
                    mask,
                };
                b.g.lsh_attention(qk, v, rot, o)?
            } else {
                b.g.lsh_plain_attention(qk, v, c.is_decoder, mask)?
            }
        } else {
            let q = self.heads(b, l, "query", h, tp, None)?;
            let k = self.heads(b, l, "key", h, tp, rows.map(|r| ("k", r)))?;
            let v = self.heads(b, l, "value", h, tp, rows.map(|r| ("v", r)))?;
            let o = LocalOptions {
                chunk: c.local_attn_chunk_length,
                before: c.local_num_chunks_before,
                after: c.local_num_chunks_after,
                causal: c.is_decoder,
                mask,
            };
            b.g.local_attention(q, k, v, o)?
        }; // [H, T', d]
        let att = b.g.permute(att, &[1, 0, 2])?;
        let att = b.g.reshape(att, &[tp, c.num_attention_heads * c.attention_head_size])?;
        let wo = self.w(b, &format!("{p}.output.dense.weight"))?;
        b.g.matmul_t(att, wo)
    }

    /// The feed-forward over x [T', h], in row chunks of `chunk_size_feed_forward` when set
    /// (see the module docs): [T', h].
    fn feed_forward(&self, b: &mut Builder, l: usize, x: NodeId, tp: usize) -> Result<NodeId> {
        let chunk = self.config.chunk_size_feed_forward;
        if chunk == 0 || chunk >= tp {
            return self.feed_forward_rows(b, l, x);
        }
        let mut parts = Vec::with_capacity(tp.div_ceil(chunk));
        for start in (0..tp).step_by(chunk) {
            let rows = b.g.rows(x, start, chunk.min(tp - start))?;
            parts.push(self.feed_forward_rows(b, l, rows)?);
        }
        b.g.concat_rows(&parts)
    }

    /// Writes the prompt's LSH rows into layer l's caches: its shared query-keys `qk` [T', H·d]
    /// (the values are written by the caller) and their offset buckets, with HF's round stride
    /// for this prompt (count + 1 when it was padded and hashed, count otherwise; a prompt too
    /// short to hash has no buckets in HF until its first step hashes everything with stride
    /// count, which these equal).
    fn fill_lsh_cache(&self, b: &mut Builder, l: usize, qk: NodeId, rot: NodeId, f: Fill, hashes: bool) -> Result<()> {
        let c = &self.config;
        let buckets = c.buckets()?;
        let st = self.cache_state(b, l, "qk", f.rows, qk)?;
        b.g.write_rows(st, qk, CACHE_SLOT)?;
        let p = DecodeHash {
            heads: c.num_attention_heads as u32,
            rounds: c.num_hashes as u32,
            buckets,
            stride: Some(buckets.count() + (hashes && f.padded) as u32),
            slot: CACHE_SLOT,
        };
        let hashed = b.g.lsh_decode_hash(qk, rot, None, p)?;
        let st = self.cache_state(b, l, "buckets", f.rows, hashed)?;
        b.g.write_rows(st, hashed, CACHE_SLOT)?;
        Ok(())
    }

    /// The graph of one cached decoding step over caches of `rows` rows: inputs "ids" [1]
    /// (the new token), "position" [1, h] (its position embedding), the rotations of every LSH
    /// layer, and the position n in runtime slot 0; output [1, vocab] logits. Steps with at
    /// most `dense_until` positions attend densely in LSH layers (HF has no buckets cached yet).
    fn build_step(&self, rows: usize, dense_until: usize) -> Result<ReformerGraph> {
        let c = &self.config;
        let mut b = Builder::new(&self.weights);
        let ids = b.g.input("ids", &[1], DType::U32)?;
        let pos = b.g.input("position", &[1, c.hidden_size], DType::F32)?;
        let we = self.w(&mut b, "embeddings.word_embeddings.weight")?;
        let x = b.g.embedding(we, ids)?;
        let emb = b.g.add(x, pos)?;
        let (mut x1, mut x2) = (emb, emb);
        let mut hashing_layers = Vec::new();
        for (l, kind) in c.attn_layers.iter().enumerate() {
            if kind == "lsh" {
                hashing_layers.push(l);
            }
            let att = self.step_attention(&mut b, l, kind == "lsh", x2, rows, dense_until)?;
            x1 = b.g.add(x1, att)?;
            let ff = self.feed_forward(&mut b, l, x1, 1)?;
            x2 = b.g.add(x2, ff)?;
        }
        let both = self.concat(&mut b, x1, x2, 1)?;
        let (w, bias) = (self.w(&mut b, "encoder.layer_norm.weight")?, self.w(&mut b, "encoder.layer_norm.bias")?);
        let out = b.g.layer_norm(both, w, bias, c.layer_norm_eps)?;
        let (w, bias) = (b.w("lm_head.decoder.weight")?, b.w("lm_head.decoder.bias")?);
        let out = b.g.linear(out, w, Some(bias), None)?;
        b.g.output(out)?;
        Ok(ReformerGraph { graph: b.g, output: out, padded: 1, hashing_layers })
    }

    /// One step's attention of layer l (LayerNorm, the new row into the caches, LSH or local
    /// decode attention, the output projection): [1, h].
    fn step_attention(
        &self,
        b: &mut Builder,
        l: usize,
        lsh: bool,
        x: NodeId,
        rows: usize,
        dense_until: usize,
    ) -> Result<NodeId> {
        let c = &self.config;
        let p = format!("encoder.layers.{l}.attention");
        let (w, bias) = (self.w(b, &format!("{p}.layer_norm.weight"))?, self.w(b, &format!("{p}.layer_norm.bias"))?);
        let h = b.g.layer_norm(x, w, bias, c.layer_norm_eps)?;
        let heads = c.num_attention_heads;
        let append = |b: &mut Builder, what: &str, y: NodeId| -> Result<NodeId> {
            let st = self.cache_state(b, l, what, rows, y)?;
            b.g.write_rows(st, y, CACHE_SLOT)
        };
        let att = if lsh {
            let buckets = c.buckets()?;
            let rot = b.g.input(&format!("layers.{l}.rotations"), &c.rotation_shape()?, DType::F32)?;
            let qk = self.project(b, l, "query_key", h)?;
            let v = self.project(b, l, "value", h)?;
            let (qk_cache, v_cache) = (append(b, "qk", qk)?, append(b, "v", v)?);
            let hr = heads * c.num_hashes;
            let old = b.g.state(&format!("reformer.cache.{l}.buckets"), &[rows, hr], DType::F32)?;
            let p = DecodeHash {
                heads: heads as u32,
                rounds: c.num_hashes as u32,
                buckets,
                stride: None,
                slot: CACHE_SLOT,
            };
            let new = b.g.lsh_decode_hash(qk, rot, Some(old), p)?;
            let bucket_cache = b.g.write_rows(old, new, CACHE_SLOT)?;
            let o = DecodeOptions {
                heads,
                rounds: c.num_hashes,
                buckets,
                chunk: c.lsh_attn_chunk_length,
                before: c.lsh_num_chunks_before,
                after: c.lsh_num_chunks_after,
                dense_until,
                slot: CACHE_SLOT,
            };
            b.g.lsh_decode_attend(qk_cache, v_cache, bucket_cache, o)?
        } else {
            let q = self.project(b, l, "query", h)?;
            let k = self.project(b, l, "key", h)?;
            let v = self.project(b, l, "value", h)?;
            let (k_cache, v_cache) = (append(b, "k", k)?, append(b, "v", v)?);
            let p = DecodeLocal {
                heads: heads as u32,
                chunk: c.local_attn_chunk_length as u32,
                before: c.local_num_chunks_before as u32,
                slot: CACHE_SLOT,
            };
            b.g.local_decode(q, k_cache, v_cache, p)?
        };
        let wo = self.w(b, &format!("{p}.output.dense.weight"))?;
        b.g.matmul_t(att, wo)
    }

    /// The cached step keeps each layer's attention window in workgroup memory: too long a
    /// window is an error that names the way out.
    fn check_decode_windows(&self) -> Result<()> {
        let c = &self.config;
        let lsh = c.lsh_attn_chunk_length * (1 + c.lsh_num_chunks_before + c.lsh_num_chunks_after);
        let local = c.local_attn_chunk_length * (1 + c.local_num_chunks_before);
        let windows = [("LSH", lsh, c.has_lsh()), ("local", local, c.attn_layers.iter().any(|a| a == "local"))];
        match windows.iter().find(|(_, w, present)| *present && *w > DECODE_MAX_WINDOW) {
            Some((kind, w, _)) => Err(Error::Usage(format!(
                "cached decoding takes attention windows of at most {DECODE_MAX_WINDOW} positions; this model's {kind} layers see {w} (decode uncached instead: --no-cache, Decoding::Uncached)"
            ))),
            None => Ok(()),
        }
    }

    /// LayerNorm, dense + activation, dense over the rows of x: [rows, h].
    fn feed_forward_rows(&self, b: &mut Builder, l: usize, x: NodeId) -> Result<NodeId> {
        let c = &self.config;
        let p = format!("encoder.layers.{l}.feed_forward");
        let (w, bias) = (self.w(b, &format!("{p}.layer_norm.weight"))?, self.w(b, &format!("{p}.layer_norm.bias"))?);
        let h = b.g.layer_norm(x, w, bias, c.layer_norm_eps)?;
        let (w1, b1) = (self.w(b, &format!("{p}.dense.dense.weight"))?, self.w(b, &format!("{p}.dense.dense.bias"))?);
        let h = b.g.linear(h, w1, Some(b1), Some(c.activation()?))?;
        let (w2, b2) = (self.w(b, &format!("{p}.output.dense.weight"))?, self.w(b, &format!("{p}.output.dense.bias"))?);
        b.g.linear(h, w2, Some(b2), None)
    }

    /// [x1, x2] along the last dimension, [T', 2h]: the rows of both stacked ([2, T', h]),
    /// then the two leading dimensions swapped.
    fn concat(&self, b: &mut Builder, x1: NodeId, x2: NodeId, tp: usize) -> Result<NodeId> {
        let h = self.config.hidden_size;
        let both = b.g.concat_rows(&[x1, x2])?;
        let both = b.g.reshape(both, &[2, tp, h])?;
        let both = b.g.permute(both, &[1, 0, 2])?;
        b.g.reshape(both, &[tp, 2 * h])
    }

    /// Runs the model on `ids` with the given rotations: returns (shape, data) of the output,
    /// [T, vocab] logits or [T, 2·hidden] hidden states.
    pub async fn run(&self, ctx: &Context, ids: &[u32], rotations: &Rotations) -> Result<(Vec<usize>, Vec<f32>)> {
        let c = &self.config;
        self.check_ids(ids)?;
        let rg = self.graph(ids.len())?;
        let mut exe = self.executor(ctx, &rg, rotations)?;
        self.set_ids(&mut exe, &rg, ids)?;
        exe.run()?;
        let out = exe.read(rg.output).await?.to_f32();
        let width = if c.has_lm_head() { c.vocab_size } else { 2 * c.hidden_size };
        Ok((vec![ids.len(), width], out))
    }

    /// The graph for `ids` and an executor with every input set (ids, mask, rotations), ready
    /// to run: what `run` does before running, for callers that time the runs.
    pub fn prepare(&self, ctx: &Context, ids: &[u32], rotations: &Rotations) -> Result<(ReformerGraph, GpuExecutor)> {
        self.check_ids(ids)?;
        let rg = self.graph(ids.len())?;
        let mut exe = self.executor(ctx, &rg, rotations)?;
        self.set_ids(&mut exe, &rg, ids)?;
        Ok((rg, exe))
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        let v = self.config.vocab_size;
        match ids.iter().find(|&&i| i as usize >= v) {
            Some(bad) => Err(Error::Usage(format!("token id {bad} is outside the model's vocabulary of {v}"))),
            None => Ok(()),
        }
    }

    /// An executor for a built graph with the rotations of its hashing layers set.
    fn executor(&self, ctx: &Context, rg: &ReformerGraph, rotations: &Rotations) -> Result<GpuExecutor> {
        self.shared_executor(ctx, rg, rotations, &mut SharedBuffers::new())
    }

    /// As `executor`, taking weights and states from `shared` (the decoding caches of a
    /// prompt's graph and its steps' graph are the same buffers).
    fn shared_executor(
        &self,
        ctx: &Context,
        rg: &ReformerGraph,
        rotations: &Rotations,
        shared: &mut SharedBuffers,
    ) -> Result<GpuExecutor> {
        let mut exe = GpuExecutor::with_shared(ctx, &rg.graph, &Plan::new(&rg.graph), shared)?;
        for &l in &rg.hashing_layers {
            let r = rotations.layer(l).ok_or_else(|| {
                Error::Usage(format!(
                    "no rotations for LSH layer {l} (tensor layers.{l}.rotations) in the rotations file"
                ))
            })?;
            exe.set_input_host(&format!("layers.{l}.rotations"), &HostData::F32(r.to_vec()))?;
        }
        Ok(exe)
    }

    /// Sets "ids" (padded with `pad_token_id`) and, when the graph pads, "mask".
    fn set_ids(&self, exe: &mut GpuExecutor, rg: &ReformerGraph, ids: &[u32]) -> Result<()> {
        let mut padded = ids.to_vec();
        padded.resize(rg.padded, self.config.pad_token_id.unwrap_or(0));
        exe.set_input("ids", &padded)?;
        if rg.graph.inputs().any(|(name, _)| name == "mask") {
            let mask: Vec<u32> = (0..rg.padded).map(|i| (i < ids.len()) as u32).collect();
            exe.set_input("mask", &mask)?;
        }
        Ok(())
    }

    /// Greedy decoding with the LM head, cached (`Decoding::Cached`): appends the most likely
    /// next id (ties: the lowest) up to `max_new` times, stopping after `eos_token_id` or when
    /// `on_token` (given the new id and the logits it was chosen from) returns false; returns
    /// the new ids. Matches HF's `generate(..., use_cache=True)`; see `generate_greedy_with`.
    pub async fn generate_greedy(
        &self,
        ctx: &Context,
        prompt: &[u32],
        max_new: usize,
        rotations: &Rotations,
        on_token: impl FnMut(u32, &[f32]) -> bool,
    ) -> Result<Vec<u32>> {
        self.generate_greedy_with(ctx, prompt, max_new, rotations, Decoding::Cached, on_token).await
    }

    /// Greedy decoding as `generate_greedy`, cached or not:
    ///
    /// - `Decoding::Cached` (HF's `generate(..., use_cache=True)`, `past_buckets_states`): the
    ///   prompt runs as one forward that also writes every layer's caches (LSH layers: shared
    ///   query-keys, values and buckets; local layers: keys and values); each further token is
    ///   one graph of a single row, run in one submit, that appends its rows and attends over
    ///   the caches as HF's cached step does (`graph::lsh_decode` writes it out). HF's cached
    ///   LSH window wraps within each round's sorted cache rather than across rounds, so these
    ///   logits differ from the uncached ones by design.
    /// - `Decoding::Uncached` (HF's `generate(..., use_cache=False)`): every step recomputes the
    ///   whole forward over the prefix. One graph and executor serve all lengths with the same
    ///   padded length (the mask tells them apart), so weights are uploaded once per padded
    ///   length.
    ///
    /// Both need the same rotations on every call to match HF (HF draws new ones per call
    /// unless `hash_seed` is set; its fixtures pin them).
    pub async fn generate_greedy_with(
        &self,
        ctx: &Context,
        prompt: &[u32],
        max_new: usize,
        rotations: &Rotations,
        decoding: Decoding,
        on_token: impl FnMut(u32, &[f32]) -> bool,
    ) -> Result<Vec<u32>> {
        let c = &self.config;
        if !c.has_lm_head() || !c.is_decoder {
            return Err(Error::Usage(
                "generation needs a causal Reformer LM (ReformerModelWithLMHead with is_decoder true)".into(),
            ));
        }
        self.check_ids(prompt)?;
        if prompt.is_empty() || max_new == 0 {
            return Ok(Vec::new());
        }
        match decoding {
            Decoding::Cached => self.generate_cached(ctx, prompt, max_new, rotations, on_token).await,
            Decoding::Uncached => self.generate_uncached(ctx, prompt, max_new, rotations, on_token).await,
        }
    }

    async fn generate_uncached(
        &self,
        ctx: &Context,
        prompt: &[u32],
        max_new: usize,
        rotations: &Rotations,
        mut on_token: impl FnMut(u32, &[f32]) -> bool,
    ) -> Result<Vec<u32>> {
        let c = &self.config;
        let mut seq = prompt.to_vec();
        let mut cached: Option<(usize, bool, ReformerGraph, GpuExecutor)> = None;
        for _ in 0..max_new {
            let t = seq.len();
            let (tp, pads) = (c.padded_length(t), c.padded_length(t) > t);
            let (_, _, rg, exe) = match cached.take() {
                Some(e) if e.0 == tp && e.1 == pads => cached.insert(e),
                _ => {
                    let rg = self.build(t, true, None)?;
                    let exe = self.executor(ctx, &rg, rotations)?;
                    cached.insert((tp, pads, rg, exe))
                }
            };
            self.set_ids(exe, rg, &seq)?;
            exe.run()?;
            let logits = exe.read(rg.output).await?.to_f32();
            let last = &logits[(t - 1) * c.vocab_size..t * c.vocab_size];
            let next = argmax(last);
            seq.push(next);
            if !on_token(next, last) || c.eos_token_id == Some(next) {
                break;
            }
        }
        Ok(seq.split_off(prompt.len()))
    }

    /// The cached decoding of `generate_greedy_with`. The caches hold the prompt and every
    /// position a step writes, up to max_position_embeddings; HF's cached buckets exist once
    /// the prompt hashed (its padded length exceeds the LSH chunk), or from the first step
    /// whose cache reaches a chunk: until then LSH layers attend densely (`dense_until`).
    async fn generate_cached(
        &self,
        ctx: &Context,
        prompt: &[u32],
        max_new: usize,
        rotations: &Rotations,
        mut on_token: impl FnMut(u32, &[f32]) -> bool,
    ) -> Result<Vec<u32>> {
        let c = &self.config;
        self.check_decode_windows()?;
        let t = prompt.len();
        let tp = c.padded_length(t);
        let max_pos = c.max_position_embeddings;
        let rows = tp.max((t + max_new - 1).min(max_pos));
        let hashed = c.has_lsh() && tp > c.lsh_attn_chunk_length;
        let dense_until = if hashed { 0 } else { c.lsh_attn_chunk_length.max(t + 1) };
        let mut shared = SharedBuffers::new();
        let pre = self.build(t, false, Some(rows))?;
        let mut exe = self.shared_executor(ctx, &pre, rotations, &mut shared)?;
        self.set_ids(&mut exe, &pre, prompt)?;
        exe.set_runtime_u32(CACHE_SLOT, 0)?;
        exe.run()?;
        let logits = exe.read(pre.output).await?.to_f32();
        drop(exe);
        let mut last = logits[(t - 1) * c.vocab_size..].to_vec();
        // The step graph is built after the first token is out (and not at all without a step).
        let mut stepper: Option<(ReformerGraph, GpuExecutor)> = None;
        let mut new = Vec::new();
        loop {
            let next = argmax(&last);
            new.push(next);
            if !on_token(next, &last) || c.eos_token_id == Some(next) || new.len() == max_new {
                break;
            }
            let n = t + new.len() - 1; // the position of `next`
            if n >= max_pos {
                return Err(Error::Usage(format!(
                    "position {n} exceeds the model's max_position_embeddings {max_pos}"
                )));
            }
            let (step, exe) = match &mut stepper {
                Some(s) => s,
                None => {
                    let step = self.build_step(rows, dense_until)?;
                    let exe = self.shared_executor(ctx, &step, rotations, &mut shared)?;
                    stepper.insert((step, exe))
                }
            };
            exe.set_input("ids", &[next])?;
            exe.set_input("position", &self.position_rows(n, n + 1)?)?;
            exe.set_runtime_u32(CACHE_SLOT, n as u32)?;
            exe.run()?;
            last = exe.read(step.output).await?.to_f32();
        }
        Ok(new)
    }
}

/// The index of the largest value (the first of equal ones; NaN never wins).
fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

/// Byte-level vocabularies (HF's google/reformer-enwik8, 258 ids): id = byte + 2, as the
/// encode/decode of that model's card and Tensor2Tensor's `ByteTextEncoder` it was trained
/// with, whose two reserved ids are 0 = padding and 1 = end of sequence (no byte either).
pub mod bytes {
    /// Ids of a byte-level vocabulary.
    pub const VOCAB: usize = 258;

    /// The ids of `text`'s UTF-8 bytes.
    pub fn encode(text: &str) -> Vec<u32> {
        text.bytes().map(|b| b as u32 + 2).collect()
    }

    /// The bytes of `ids` (ids below 2, and any beyond the vocabulary, give none).
    pub fn decode(ids: &[u32]) -> Vec<u8> {
        ids.iter().filter(|&&i| (2..VOCAB as u32).contains(&i)).map(|&i| (i - 2) as u8).collect()
    }
}
