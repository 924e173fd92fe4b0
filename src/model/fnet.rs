//! FNet encoder (Lee-Thorp et al., "FNet: Mixing Tokens with Fourier Transforms") as Hugging
//! Face's `FNetModel`: self-attention replaced by the real part of a 2-D DFT over the hidden
//! and sequence axes (no weights, no mask: padding tokens are mixed in too).
//!
//! ```text
//! h = projection(LayerNorm(word[ids] + type[types] + position[positions]))   [T, d]
//! per layer:  h = LayerNorm(h + Re(FFT2(h)))                  fourier.output.LayerNorm
//!             h = LayerNorm(h + W2 · gelu_new(W1 · h + b1) + b2)   output.LayerNorm
//! pooled = tanh(pooler.dense(h[0]))                                       [1, d]
//! ```
//! With an `FNetForMaskedLM` checkpoint the masked-LM head runs too:
//! logits = LayerNorm(act(transform.dense(h))) · word_embeddingsᵀ + cls.predictions.bias
//! (the decoder is tied to the word embeddings unless the file has its own).
//!
//! `FNetEmbedder` turns text into one sentence vector: tokenize, encode, pool the last hidden
//! state (by mean unless a sentence-transformers `1_Pooling/config.json` says otherwise), then
//! L2-normalise on the host, with the same pooling and normalisation as BERT's `Embedder`.
//!
//! Checkpoint tensor names are kept (a leading `fnet.` is dropped, as in checkpoints saved from
//! a task head), so loading is a lookup.

use serde::{Deserialize, Serialize};

use super::bert;
use super::config::Pooling;
use super::safetensors::Safetensors;
use super::weights::{Builder, Weights};
use crate::error::{Error, Result};
use crate::exec::GpuExecutor;
use crate::gpu::Context;
use crate::graph::{Activation, Graph, NodeId};
use crate::tensor::DType;

/// An FNet encoder, from Hugging Face's `config.json` (the fields inference uses; others in the
/// file are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FNetConfig {
    /// Token vocabulary size (rows of `embeddings.word_embeddings.weight`).
    pub vocab_size: usize,
    /// Model width (the length of the hidden-axis transform).
    pub hidden_size: usize,
    /// Encoder layers (`encoder.layer.{n}`).
    pub num_hidden_layers: usize,
    /// Inner width of the feed-forward (`intermediate.dense`).
    pub intermediate_size: usize,
    /// Feed-forward activation: `gelu_new` (tanh form) in FNet checkpoints.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Rows of the learned position embeddings: the longest input.
    pub max_position_embeddings: usize,
    /// Rows of the token-type (segment) embeddings.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_ln_eps")]
    pub layer_norm_eps: f32,
}

fn default_act() -> String {
    "gelu_new".into()
}
fn default_type_vocab() -> usize {
    4
}
fn default_ln_eps() -> f32 {
    1e-12
}

impl FNetConfig {
    /// Parses `config.json`; `file` names it in errors.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Self> {
        let c: FNetConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::Model { file: file.into(), detail: format!("not an FNet config.json: {e}") })?;
        c.check(file)?;
        Ok(c)
    }

    /// Checks every size against the range webformer runs, naming the key and the range (as
    /// BERT's config does).
    fn check(&self, file: &str) -> Result<()> {
        use super::config::{float_in, int_in, MAX_WIDTH};
        int_in(file, "vocab_size", self.vocab_size, 1, u32::MAX as usize)?;
        int_in(file, "hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        int_in(file, "num_hidden_layers", self.num_hidden_layers, 1, 4096)?;
        int_in(file, "intermediate_size", self.intermediate_size, 1, MAX_WIDTH * 16)?;
        int_in(file, "max_position_embeddings", self.max_position_embeddings, 1, u32::MAX as usize)?;
        int_in(file, "type_vocab_size", self.type_vocab_size, 1, u32::MAX as usize)?;
        float_in(file, "layer_norm_eps", self.layer_norm_eps as f64, 0.0, 1.0)?;
        Ok(())
    }

    /// The feed-forward activation, or why it is not supported.
    fn activation(&self) -> Result<Activation> {
        match self.hidden_act.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "gelu" => Ok(Activation::GeluErf),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::Usage(format!(
                "FNet activation '{other}' is not supported; webformer runs gelu_new, gelu and relu"
            ))),
        }
    }
}

/// A built encoder graph. Inputs "ids", "positions" and "types", each [T] u32.
pub struct FNetGraph {
    pub graph: Graph,
    /// [T, hidden]: the last hidden state.
    pub hidden: NodeId,
    /// [1, hidden]: tanh(dense(first token)), `FNetModel`'s pooler_output.
    pub pooled: NodeId,
    /// [T, vocab]: the masked-LM logits, when the checkpoint has the head.
    pub logits: Option<NodeId>,
}

/// The results of one encoder run (row-major).
#[derive(Clone, Debug)]
pub struct FNetOutputs {
    /// [T × hidden]
    pub hidden: Vec<f32>,
    /// [hidden]
    pub pooled: Vec<f32>,
    /// [T × vocab], when the checkpoint has the masked-LM head.
    pub logits: Option<Vec<f32>>,
}

/// Name of the MLM decoder weight when a checkpoint has its own (else it is tied).
const DECODER: &str = "cls.predictions.decoder.weight";

/// An FNet encoder's configuration and host weights.
pub struct FNet {
    pub config: FNetConfig,
    weights: Weights,
    /// The checkpoint has `FNetForMaskedLM`'s head (`cls.predictions.*`).
    pub mlm: bool,
}

impl FNet {
    /// Copies the encoder's tensors out of a checkpoint, checking their shapes.
    pub fn from_safetensors(config: FNetConfig, st: &Safetensors) -> Result<Self> {
        config.activation()?;
        let prefix = if st.names().iter().any(|n| n.starts_with("fnet.")) { "fnet." } else { "" };
        let mut weights = Weights::new(st.file());
        for (name, shape) in Self::tensors(&config) {
            weights.insert(&name, st.tensor(&format!("{prefix}{name}"))?);
            weights.expect(&name, &shape, "an FNet encoder with this config.json")?;
        }
        let names = st.names();
        let mlm = names.iter().any(|n| n.starts_with("cls.predictions."));
        if mlm {
            let mut head = Self::head_tensors(&config);
            if names.contains(&DECODER) {
                head.push((DECODER.into(), vec![config.vocab_size, config.hidden_size]));
            }
            for (name, shape) in head {
                weights.insert(&name, st.tensor(&name)?);
                weights.expect(&name, &shape, "the masked-LM head of an FNet with this config.json")?;
            }
        }
        Ok(Self { config, weights, mlm })
    }

    /// The masked-LM head's tensors (the decoder weight aside) and their shapes.
    fn head_tensors(c: &FNetConfig) -> Vec<(String, Vec<usize>)> {
        let d = c.hidden_size;
        let p = "cls.predictions";
        vec![
            (format!("{p}.transform.dense.weight"), vec![d, d]),
            (format!("{p}.transform.dense.bias"), vec![d]),
            (format!("{p}.transform.LayerNorm.weight"), vec![d]),
            (format!("{p}.transform.LayerNorm.bias"), vec![d]),
            (format!("{p}.bias"), vec![c.vocab_size]),
        ]
    }

    /// Every tensor the encoder reads and its shape.
    fn tensors(c: &FNetConfig) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let mut t = vec![
            ("embeddings.word_embeddings.weight".to_string(), vec![c.vocab_size, d]),
            ("embeddings.position_embeddings.weight".into(), vec![c.max_position_embeddings, d]),
            ("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab_size, d]),
        ];
        let mut dense = |name: String, shape: Vec<usize>, bias: bool| {
            let out = shape[0];
            t.push((format!("{name}.weight"), shape));
            if bias {
                t.push((format!("{name}.bias"), vec![out]));
            }
        };
        dense("embeddings.LayerNorm".into(), vec![d], true);
        dense("embeddings.projection".into(), vec![d, d], true);
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            dense(format!("{p}.fourier.output.LayerNorm"), vec![d], true);
            dense(format!("{p}.intermediate.dense"), vec![f, d], true);
            dense(format!("{p}.output.dense"), vec![d, f], true);
            dense(format!("{p}.output.LayerNorm"), vec![d], true);
        }
        dense("pooler.dense".into(), vec![d, d], true);
        t
    }

    /// Host bytes of the weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }

    /// The encoder graph for one sequence of `tokens` ids.
    pub fn graph(&self, tokens: usize) -> Result<FNetGraph> {
        let c = &self.config;
        if tokens == 0 || tokens > c.max_position_embeddings {
            return Err(Error::Usage(format!("FNet takes 1 to {} tokens, not {tokens}", c.max_position_embeddings)));
        }
        let act = c.activation()?;
        let mut b = Builder::new(&self.weights);
        let mut h = self.embeddings(&mut b, tokens)?;
        for l in 0..c.num_hidden_layers {
            h = self.layer(&mut b, l, h, act)?;
        }
        let first = b.g.rows(h, 0, 1)?; // [1, d]
        let pooled = self.dense(&mut b, first, "pooler.dense", Some(Activation::Tanh))?;
        b.g.output(h)?;
        b.g.output(pooled)?;
        let logits = if self.mlm { Some(self.mlm_head(&mut b, h, act)?) } else { None };
        if let Some(l) = logits {
            b.g.output(l)?;
        }
        Ok(FNetGraph { graph: b.g, hidden: h, pooled, logits })
    }

    /// The encoder graph with the last hidden state pooled into a sentence vector [1, hidden]
    /// (the second result; not normalised).
    pub fn pooled_graph(&self, tokens: usize, pooling: Pooling) -> Result<(FNetGraph, NodeId)> {
        let mut fg = self.graph(tokens)?;
        let pooled = bert::pool(&mut fg.graph, fg.hidden, tokens, pooling)?;
        fg.graph.output(pooled)?;
        Ok((fg, pooled))
    }

    /// LayerNorm(act(dense(h))) · decoderᵀ + bias: [T, vocab].
    fn mlm_head(&self, b: &mut Builder, h: NodeId, act: Activation) -> Result<NodeId> {
        let t = self.dense(b, h, "cls.predictions.transform.dense", Some(act))?;
        let t = self.norm(b, t, "cls.predictions.transform.LayerNorm")?;
        let tied = !self.weights.contains(DECODER);
        let w = b.w(if tied { "embeddings.word_embeddings.weight" } else { DECODER })?; // [vocab, d]
        let bias = b.w("cls.predictions.bias")?;
        b.g.linear(t, w, Some(bias), None)
    }

    /// projection(LayerNorm(word + type + position embeddings)): [T, d].
    fn embeddings(&self, b: &mut Builder, t: usize) -> Result<NodeId> {
        let ids = b.g.input("ids", &[t], DType::U32)?;
        let pos = b.g.input("positions", &[t], DType::U32)?;
        let types = b.g.input("types", &[t], DType::U32)?;
        let (we, pe, te) = (
            b.w("embeddings.word_embeddings.weight")?,
            b.w("embeddings.position_embeddings.weight")?,
            b.w("embeddings.token_type_embeddings.weight")?,
        );
        let (e1, e2, e3) = (b.g.embedding(we, ids)?, b.g.embedding(te, types)?, b.g.embedding(pe, pos)?);
        let e = b.g.add(e1, e2)?;
        let e = b.g.add(e, e3)?;
        let e = self.norm(b, e, "embeddings.LayerNorm")?;
        self.dense(b, e, "embeddings.projection", None)
    }

    /// One post-LN block: Fourier mixing, then the feed-forward, each added and normalised.
    fn layer(&self, b: &mut Builder, l: usize, h: NodeId, act: Activation) -> Result<NodeId> {
        let p = format!("encoder.layer.{l}");
        let m = b.g.fourier_mix(h)?; // [T, d] = Re(FFT over d, then over T)
        let r = b.g.add(h, m)?;
        let h = self.norm(b, r, &format!("{p}.fourier.output.LayerNorm"))?;
        let i = self.dense(b, h, &format!("{p}.intermediate.dense"), Some(act))?; // [T, ffn]
        let o = self.dense(b, i, &format!("{p}.output.dense"), None)?;
        let r = b.g.add(o, h)?;
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

    /// Runs the encoder once on the GPU: token ids and types ([T] each; positions 0..T) to the
    /// last hidden state, the pooled vector and (with the head) the masked-LM logits.
    pub async fn forward(&self, ctx: &Context, ids: &[u32], types: &[u32]) -> Result<FNetOutputs> {
        let c = &self.config;
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= c.vocab_size) {
            return Err(Error::Usage(format!("token id {bad} is outside the model's vocabulary of {}", c.vocab_size)));
        }
        if let Some(bad) = types.iter().find(|&&i| i as usize >= c.type_vocab_size) {
            return Err(Error::Usage(format!("token type {bad} is outside the model's {} types", c.type_vocab_size)));
        }
        if types.len() != ids.len() {
            return Err(Error::Usage(format!("{} token types given for {} ids", types.len(), ids.len())));
        }
        let t = ids.len();
        let fg = self.graph(t)?;
        let mut exe = GpuExecutor::new(ctx, &fg.graph)?;
        exe.set_input("ids", ids)?;
        exe.set_input("positions", &(0..t as u32).collect::<Vec<_>>())?;
        exe.set_input("types", types)?;
        exe.run()?;
        let logits = match fg.logits {
            Some(l) => Some(exe.read(l).await?.to_f32()),
            None => None,
        };
        Ok(FNetOutputs {
            hidden: exe.read(fg.hidden).await?.to_f32(),
            pooled: exe.read(fg.pooled).await?.to_f32(),
            logits,
        })
    }
}

/// An FNet encoder with its tokenizer on the GPU: text in, sentence embedding out.
pub type FNetEmbedder = bert::Embedder<FNet>;

impl bert::SentenceEncoder for FNet {
    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn pooled_graph(&self, tokens: usize, pooling: Pooling) -> Result<(Graph, NodeId, NodeId)> {
        let (fg, pooled) = FNet::pooled_graph(self, tokens, pooling)?;
        Ok((fg.graph, fg.hidden, pooled))
    }
}
