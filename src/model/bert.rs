//! BERT encoder (all-MiniLM-L6-v2 and its family) with sentence-transformers pooling: loads
//! weights and builds graphs. Post-LN blocks, GELU (erf), learned absolute positions,
//! bidirectional attention with the fused prefill kernel.
//!
//! `Embedder` runs it: tokenize ([CLS] ... [SEP], truncated to `max_seq_length`), one graph
//! per sequence length, pooling on the GPU (the mean as a [1, T]·[T, d] product), then L2
//! normalisation on the host when the model's `modules.json` asks for it.

use super::config::{BertConfig, Pooling, SentenceConfig};
use super::guard;
use super::safetensors::Safetensors;
use super::weights::{Builder, Weights};
use super::Tokenizer;
use crate::error::{Error, Result};
use crate::exec::{GpuExecutor, SharedBuffers};
use crate::gpu::Context;
use crate::graph::plan::Plan;
use crate::graph::{Activation, AttentionOptions, Graph, KeyRange, NodeId};
use crate::tensor::{DType, HostData};

/// A built encoder graph. Inputs "ids", "positions" and "types", each [T] u32.
pub struct BertGraph {
    pub graph: Graph,
    /// [T, hidden]: the last hidden state.
    pub hidden: NodeId,
    /// [1, hidden]: the pooled sentence vector (not normalised).
    pub pooled: NodeId,
}

/// A BERT encoder's configuration and host weights.
pub struct Bert {
    pub config: BertConfig,
    weights: Weights,
}

impl Bert {
    /// Copies the encoder's tensors out of a checkpoint (a leading `bert.` in names is
    /// dropped, as in `BertModel` checkpoints saved from a task head), checking their shapes.
    pub fn from_safetensors(config: BertConfig, st: &Safetensors) -> Result<Self> {
        if config.hidden_act != "gelu" {
            return Err(Error::Usage(format!(
                "BERT activation '{}' is not supported; webformer runs 'gelu' (erf) encoders",
                config.hidden_act
            )));
        }
        if config.position_embedding_type != "absolute" {
            return Err(Error::Usage(format!(
                "BERT position embeddings '{}' are not supported; webformer runs 'absolute' ones",
                config.position_embedding_type
            )));
        }
        let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) { "bert." } else { "" };
        let mut weights = Weights::new(st.file());
        for (name, shape) in Self::tensors(&config) {
            weights.insert(&name, st.tensor(&format!("{prefix}{name}"))?);
            weights.expect(&name, &shape, "a BERT encoder with this config.json")?;
        }
        Ok(Self { config, weights })
    }

    /// Every tensor the encoder reads and its shape.
    fn tensors(c: &BertConfig) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let mut t = vec![
            ("embeddings.word_embeddings.weight".to_string(), vec![c.vocab_size, d]),
            ("embeddings.position_embeddings.weight".into(), vec![c.max_position_embeddings, d]),
            ("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab_size, d]),
            ("embeddings.LayerNorm.weight".into(), vec![d]),
            ("embeddings.LayerNorm.bias".into(), vec![d]),
        ];
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            for (name, shape) in [
                ("attention.self.query", vec![d, d]),
                ("attention.self.key", vec![d, d]),
                ("attention.self.value", vec![d, d]),
                ("attention.output.dense", vec![d, d]),
                ("attention.output.LayerNorm", vec![d]),
                ("intermediate.dense", vec![f, d]),
                ("output.dense", vec![d, f]),
                ("output.LayerNorm", vec![d]),
            ] {
                let out = shape[0];
                t.push((format!("{p}.{name}.weight"), shape));
                t.push((format!("{p}.{name}.bias"), vec![out]));
            }
        }
        t
    }

    /// Host bytes of the weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }

    /// The encoder graph for one sequence of `tokens` ids with the given pooling.
    pub fn graph(&self, tokens: usize, pooling: Pooling) -> Result<BertGraph> {
        let c = &self.config;
        if tokens == 0 || tokens > c.max_position_embeddings {
            return Err(Error::Usage(format!("BERT takes 1 to {} tokens, not {tokens}", c.max_position_embeddings)));
        }
        let mut b = Builder::new(&self.weights);
        let mut h = self.embeddings(&mut b, tokens)?;
        for l in 0..c.num_hidden_layers {
            h = self.layer(&mut b, l, h, tokens)?;
        }
        let pooled = pool(&mut b.g, h, tokens, pooling)?;
        b.g.output(h)?;
        b.g.output(pooled)?;
        Ok(BertGraph { graph: b.g, hidden: h, pooled })
    }

    /// LayerNorm(word + position + type embeddings): [T, d].
    fn embeddings(&self, b: &mut Builder, t: usize) -> Result<NodeId> {
        let ids = b.g.input("ids", &[t], DType::U32)?;
        let pos = b.g.input("positions", &[t], DType::U32)?;
        let types = b.g.input("types", &[t], DType::U32)?;
        let (we, pe, te) = (
            b.w("embeddings.word_embeddings.weight")?,
            b.w("embeddings.position_embeddings.weight")?,
            b.w("embeddings.token_type_embeddings.weight")?,
        );
        let (e1, e2, e3) = (b.g.embedding(we, ids)?, b.g.embedding(pe, pos)?, b.g.embedding(te, types)?);
        let e = b.g.add(e1, e2)?;
        let e = b.g.add(e, e3)?;
        self.norm(b, e, "embeddings.LayerNorm")
    }

    /// One post-LN encoder layer.
    fn layer(&self, b: &mut Builder, l: usize, h: NodeId, t: usize) -> Result<NodeId> {
        let c = &self.config;
        let (d, heads, hd) = (c.hidden_size, c.num_attention_heads, c.head_dim());
        let p = format!("encoder.layer.{l}");
        let q = self.dense(b, h, &format!("{p}.attention.self.query"), None)?;
        let k = self.dense(b, h, &format!("{p}.attention.self.key"), None)?;
        let v = self.dense(b, h, &format!("{p}.attention.self.value"), None)?;
        let (q, k, v) =
            (b.g.reshape(q, &[t, heads, hd])?, b.g.reshape(k, &[t, heads, hd])?, b.g.reshape(v, &[t, heads, hd])?);
        let a = b.g.attention(
            q,
            k,
            v,
            AttentionOptions { causal: false, scale: None, mask: None, keys: KeyRange::All, ..Default::default() },
        )?;
        let a = b.g.reshape(a, &[t, d])?;
        let o = self.dense(b, a, &format!("{p}.attention.output.dense"), None)?;
        let r = b.g.add(h, o)?;
        let h = self.norm(b, r, &format!("{p}.attention.output.LayerNorm"))?;
        let i = self.dense(b, h, &format!("{p}.intermediate.dense"), Some(Activation::GeluErf))?;
        let o = self.dense(b, i, &format!("{p}.output.dense"), None)?;
        let r = b.g.add(h, o)?;
        self.norm(b, r, &format!("{p}.output.LayerNorm"))
    }

    fn dense(&self, b: &mut Builder, x: NodeId, prefix: &str, act: Option<Activation>) -> Result<NodeId> {
        let (w, bias) = (b.w(&format!("{prefix}.weight"))?, b.w(&format!("{prefix}.bias"))?);
        b.g.linear(x, w, Some(bias), act)
    }

    fn norm(&self, b: &mut Builder, x: NodeId, prefix: &str) -> Result<NodeId> {
        let (w, bias) = (b.w(&format!("{prefix}.weight"))?, b.w(&format!("{prefix}.bias"))?);
        b.g.layer_norm(x, w, bias, self.config.layer_norm_eps)
    }
}

/// Pools the token states `h` [T, d] of one unpadded sequence into [1, d].
pub(crate) fn pool(g: &mut Graph, h: NodeId, tokens: usize, pooling: Pooling) -> Result<NodeId> {
    match pooling {
        Pooling::Mean => {
            // Every token counts (one unpadded sequence): the mean is a [1, T] · [T, d]
            // product. Named by length: SharedBuffers shares weights by name.
            let avg = g.weight(&format!("mean_pool.{tokens}"), &[1, tokens], vec![1.0 / tokens as f32; tokens])?;
            g.matmul(avg, h)
        }
        Pooling::Cls => g.rows(h, 0, 1),
        Pooling::Max => Err(Error::Usage("max pooling is not supported; webformer pools by mean or [CLS]".into())),
    }
}

/// Scales `v` to unit L2 norm (summed in f64; an all-zero vector stays zero).
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
}

/// An encoder that an [`Embedder`] runs: BERT, FNet.
pub trait SentenceEncoder {
    /// The longest input, in tokens.
    fn max_positions(&self) -> usize;
    /// The number of token ids it embeds.
    fn vocab_size(&self) -> usize;
    /// Its graph over `tokens` ids (inputs "ids", "positions", "types"): (graph, last hidden
    /// state [T, hidden], the pooled vector [1, hidden] before normalisation), both outputs.
    fn pooled_graph(&self, tokens: usize, pooling: Pooling) -> Result<(Graph, NodeId, NodeId)>;
}

impl SentenceEncoder for Bert {
    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn pooled_graph(&self, tokens: usize, pooling: Pooling) -> Result<(Graph, NodeId, NodeId)> {
        let bg = self.graph(tokens, pooling)?;
        Ok((bg.graph, bg.hidden, bg.pooled))
    }
}

/// A sentence-transformers model on the GPU: text in, embedding out (BERT by default; FNet
/// through [`super::FNetEmbedder`]).
pub struct Embedder<M: SentenceEncoder = Bert> {
    ctx: Context,
    model: M,
    tokenizer: Tokenizer,
    sentence: SentenceConfig,
    shared: SharedBuffers,
}

/// The output of one encoder run.
pub struct Encoded {
    pub ids: Vec<u32>,
    /// [T × hidden], row-major.
    pub hidden: Vec<f32>,
    /// The pooled vector, normalised when the model asks for it.
    pub embedding: Vec<f32>,
}

impl Embedder<Bert> {
    /// The BERT encoder.
    pub fn bert(&self) -> &Bert {
        &self.model
    }
}

impl<M: SentenceEncoder> Embedder<M> {
    /// Truncates the tokenizer to `sentence.max_seq_length` (and the model's positions).
    pub fn new(ctx: &Context, model: M, mut tokenizer: Tokenizer, sentence: SentenceConfig) -> Result<Self> {
        let max = sentence.max_seq_length.min(model.max_positions());
        tokenizer.truncate(max)?;
        Ok(Self { ctx: ctx.clone(), model, tokenizer, sentence, shared: SharedBuffers::new() })
    }

    /// The encoder.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The tokenizer (truncating to the embedder's sequence length).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The pooled, normalised (if configured) sentence embedding of `text` (special tokens
    /// added as the tokenizer's post-processor says; token types 0).
    pub async fn embed(&mut self, text: &str) -> Result<Vec<f32>> {
        let ids = self.tokenizer.encode(text, true)?;
        Ok(self.encode_ids(&ids).await?.embedding)
    }

    /// Runs the encoder on token ids (special tokens included).
    pub async fn encode_ids(&mut self, ids: &[u32]) -> Result<Encoded> {
        let vocab = self.model.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::Usage(format!("token id {bad} is outside the model's vocabulary of {vocab}")));
        }
        if ids.is_empty() {
            return Err(Error::Usage("the text has no tokens to embed".into()));
        }
        let t = ids.len();
        let (graph, hidden_id, pooled_id) = self.model.pooled_graph(t, self.sentence.pooling)?;
        let mut exe = GpuExecutor::with_shared(&self.ctx, &graph, &Plan::new(&graph), &mut self.shared)?;
        let inputs = [
            ("ids", HostData::U32(ids.to_vec())),
            ("positions", HostData::U32((0..t as u32).collect())),
            ("types", HostData::U32(vec![0; t])),
        ];
        for (name, data) in &inputs {
            exe.set_input_host(name, data)?;
        }
        exe.run()?;
        let hidden = exe.read(hidden_id).await?.to_f32();
        // NaN or infinity is an error naming its source, never an embedding of nulls.
        guard::check_output(&hidden, "the hidden states", &self.ctx, &graph, &mut self.shared, &inputs, &[]).await?;
        let mut embedding = exe.read(pooled_id).await?.to_f32();
        if self.sentence.normalize {
            normalize(&mut embedding);
        }
        Ok(Encoded { ids: ids.to_vec(), hidden, embedding })
    }
}
