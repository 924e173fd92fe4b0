//! Model hyperparameters: Llama from GGUF metadata, BERT from Hugging Face's `config.json`,
//! sentence-transformers pooling from its side files. Every field says what it is and where
//! it comes from, so model code never reads metadata keys itself.

use serde::{Deserialize, Serialize};

use super::gguf::Gguf;
use crate::error::{Error, Result};

/// A Llama-architecture decoder (SmolLM2, Llama 2/3, ...) as a GGUF file describes it.
///
/// Tensor names in the file (`{n}` = layer): `token_embd.weight` [vocab, hidden],
/// `blk.{n}.attn_norm.weight` [hidden], `blk.{n}.attn_q.weight` [heads·head_dim, hidden],
/// `blk.{n}.attn_k.weight` / `attn_v.weight` [kv_heads·head_dim, hidden],
/// `blk.{n}.attn_output.weight` [hidden, heads·head_dim], `blk.{n}.ffn_norm.weight` [hidden],
/// `blk.{n}.ffn_gate.weight` / `ffn_up.weight` [ffn, hidden], `blk.{n}.ffn_down.weight`
/// [hidden, ffn], `output_norm.weight` [hidden], `output.weight` [vocab, hidden] (absent when
/// the embeddings are tied).
///
/// RoPE: llama.cpp's converter permutes the rows of `attn_q`/`attn_k` so that rotary pairs are
/// adjacent elements (2i, 2i+1) of each head (ggml's "normal" rope), where Hugging Face rotates
/// (i, i + head_dim/2). Used as stored, these weights need the adjacent-pair rotation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlamaConfig {
    /// Transformer blocks (`{arch}.block_count`).
    pub n_layers: usize,
    /// Model width (`{arch}.embedding_length`).
    pub hidden: usize,
    /// Query heads (`{arch}.attention.head_count`).
    pub n_heads: usize,
    /// Key/value heads, fewer than `n_heads` for grouped-query attention
    /// (`{arch}.attention.head_count_kv`, default `n_heads`).
    pub n_kv_heads: usize,
    /// Width of one head (`{arch}.attention.key_length`, default `hidden / n_heads`).
    pub head_dim: usize,
    /// Rotated dimensions per head (`{arch}.rope.dimension_count`, default `head_dim`).
    pub rope_dim: usize,
    /// Inner width of the SwiGLU feed-forward (`{arch}.feed_forward_length`).
    pub ffn: usize,
    /// Vocabulary size (`{arch}.vocab_size`, else the length of `tokenizer.ggml.tokens`).
    pub vocab: usize,
    /// RoPE base frequency θ (`{arch}.rope.freq_base`, default 10000).
    pub rope_theta: f32,
    /// RMSNorm epsilon (`{arch}.attention.layer_norm_rms_epsilon`, default 1e-5).
    pub rms_eps: f32,
    /// Context length the model was trained for (`{arch}.context_length`).
    pub context_length: usize,
    /// Begin-of-sequence token (`tokenizer.ggml.bos_token_id`).
    pub bos_id: Option<u32>,
    /// End-of-sequence token (`tokenizer.ggml.eos_token_id`); generation stops on it.
    pub eos_id: Option<u32>,
    /// True when the file has no `output.weight`: the LM head reuses `token_embd.weight`.
    pub tied_embeddings: bool,
    /// The Jinja chat template (`tokenizer.chat_template`), if the model has one.
    pub chat_template: Option<String>,
}

/// Largest model width, head count or head width accepted from a file: far above any real
/// model, low enough that products of them cannot overflow.
pub(crate) const MAX_WIDTH: usize = 1 << 20;

/// Refuses an integer outside `min..=max`, naming the file and the key.
pub(crate) fn int_in(file: &str, key: &str, v: usize, min: usize, max: usize) -> Result<usize> {
    if (min..=max).contains(&v) {
        return Ok(v);
    }
    Err(Error::Model { file: file.into(), detail: format!("{key} is {v}; it must be {min} to {max}") })
}

/// Refuses a float that is not finite or not inside (`above`, `below`), naming the file and key.
pub(crate) fn float_in(file: &str, key: &str, v: f64, above: f64, below: f64) -> Result<f64> {
    if v.is_finite() && v > above && v < below {
        return Ok(v);
    }
    let range = if below.is_finite() {
        format!("a finite number above {above} and below {below}")
    } else {
        format!("a finite number above {above}")
    };
    Err(Error::Model { file: file.into(), detail: format!("{key} is {v}; it must be {range}") })
}

impl LlamaConfig {
    /// Reads the hyperparameters of a GGUF whose `general.architecture` is `llama`, checking
    /// each against the range webformer can run (the message names the key and the range),
    /// the layer count against the `blk.{n}` tensors present, and the special-token ids and the
    /// tokenizer's length against the vocabulary.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.str("general.architecture")?;
        let file = g.file();
        if arch != "llama" {
            return Err(Error::Model {
                file: file.into(),
                detail: format!("general.architecture is '{arch}'; LlamaConfig reads 'llama' models"),
            });
        }
        let k = |s: &str| format!("{arch}.{s}");
        let int = |key: &str, min: usize, max: usize| -> Result<usize> {
            int_in(file, &k(key), g.u32(&k(key))? as usize, min, max)
        };
        let int_opt = |key: &str, default: usize, min: usize, max: usize| -> Result<usize> {
            int_in(file, &k(key), g.u32_opt(&k(key))?.map_or(default, |v| v as usize), min, max)
        };
        let hidden = int("embedding_length", 1, MAX_WIDTH)?;
        let n_heads = int("attention.head_count", 1, hidden)?;
        if !hidden.is_multiple_of(n_heads) {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "{arch}.attention.head_count is {n_heads}, which does not divide the hidden size {hidden}"
                ),
            });
        }
        let n_kv_heads = int_opt("attention.head_count_kv", n_heads, 1, n_heads)?;
        if !n_heads.is_multiple_of(n_kv_heads) {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "{arch}.attention.head_count_kv is {n_kv_heads}, which does not divide the {n_heads} query heads"
                ),
            });
        }
        let head_dim = int_opt("attention.key_length", hidden / n_heads, 2, MAX_WIDTH / n_heads)?;
        if !head_dim.is_multiple_of(2) {
            return Err(Error::Model {
                file: file.into(),
                detail: format!("{arch}.attention.key_length is {head_dim}; RoPE rotates pairs, so it must be even"),
            });
        }
        let vocab = Self::vocab(g, arch)?;
        let n_layers = int("block_count", 1, 4096)?;
        check_layer_tensors(g, &k("block_count"), n_layers)?;
        let rope_theta = float_in(
            file,
            &k("rope.freq_base"),
            g.f64_opt(&k("rope.freq_base"))?.unwrap_or(10000.0),
            1.0,
            f64::INFINITY,
        )?;
        let rms_eps = float_in(
            file,
            &k("attention.layer_norm_rms_epsilon"),
            g.f64_opt(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
            0.0,
            1.0,
        )?;
        let special = |key: &str| -> Result<Option<u32>> {
            match g.u32_opt(key)? {
                Some(id) if id as usize >= vocab => Err(Error::Model {
                    file: file.into(),
                    detail: format!("{key} is {id}; it must be a token id below the vocabulary size {vocab}"),
                }),
                other => Ok(other),
            }
        };
        Ok(Self {
            n_layers,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_dim: int_opt("rope.dimension_count", head_dim, 1, head_dim)?,
            ffn: int("feed_forward_length", 1, MAX_WIDTH * 16)?,
            vocab,
            rope_theta: rope_theta as f32,
            rms_eps: rms_eps as f32,
            context_length: int("context_length", 1, u32::MAX as usize)?,
            bos_id: special("tokenizer.ggml.bos_token_id")?,
            eos_id: special("tokenizer.ggml.eos_token_id")?,
            tied_embeddings: g.tensor_info("output.weight").is_none(),
            chat_template: g.str_opt("tokenizer.chat_template")?.map(str::to_string),
        })
    }

    /// The vocabulary size: `{arch}.vocab_size`, else the length of `tokenizer.ggml.tokens`;
    /// when both are there they must agree (every id the model can produce must decode).
    fn vocab(g: &Gguf, arch: &str) -> Result<usize> {
        let key = format!("{arch}.vocab_size");
        let tokens = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map(|a| a.len());
        let vocab = match (g.u32_opt(&key)?, tokens) {
            (Some(v), Some(t)) if v as usize != t => {
                return Err(Error::Model {
                    file: g.file().into(),
                    detail: format!(
                        "{key} is {v} but tokenizer.ggml.tokens has {t} entries; they must agree, or generated ids could not be decoded"
                    ),
                })
            }
            (Some(v), _) => v as usize,
            (None, Some(t)) => t,
            (None, None) => {
                return Err(Error::Model {
                    file: g.file().into(),
                    detail: format!("has neither {key} nor tokenizer.ggml.tokens, so the vocabulary size is unknown"),
                })
            }
        };
        int_in(g.file(), &key, vocab, 1, u32::MAX as usize)
    }
}

/// Checks that the file has tensors for exactly `n_layers` blocks (`blk.0.` to
/// `blk.{n_layers - 1}.`), so a wrong `block_count` is named as such.
fn check_layer_tensors(g: &Gguf, key: &str, n_layers: usize) -> Result<()> {
    let present = g
        .tensors()
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |n| n + 1);
    if present == n_layers || g.tensors().is_empty() {
        return Ok(());
    }
    Err(Error::Model {
        file: g.file().into(),
        detail: format!(
            "{key} is {n_layers} but the file has tensors for {present} layers (blk.0 to blk.{})",
            present.saturating_sub(1)
        ),
    })
}

/// A BERT encoder, from Hugging Face's `config.json` (only the fields BERT inference uses;
/// others in the file are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Token vocabulary size (rows of `embeddings.word_embeddings.weight`).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Encoder layers (`encoder.layer.{n}`).
    pub num_hidden_layers: usize,
    /// Attention heads per layer; head width is `hidden_size / num_attention_heads`.
    pub num_attention_heads: usize,
    /// Inner width of the feed-forward (`intermediate.dense`).
    pub intermediate_size: usize,
    /// Feed-forward activation: `gelu` (erf form) for BERT/MiniLM.
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
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Position embedding kind; only `absolute` is used by BERT checkpoints we load.
    #[serde(default = "default_pos")]
    pub position_embedding_type: String,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_ln_eps() -> f32 {
    1e-12
}
fn default_pos() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Parses `config.json`; `file` names it in errors. Checks that the heads divide the width.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Self> {
        let c: BertConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::Model { file: file.into(), detail: format!("not a BERT config.json: {e}") })?;
        c.check(file)?;
        if !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "num_attention_heads {} does not divide hidden_size {}",
                    c.num_attention_heads, c.hidden_size
                ),
            });
        }
        Ok(c)
    }

    /// Checks every size against the range webformer runs, naming the key and the range.
    fn check(&self, file: &str) -> Result<()> {
        int_in(file, "vocab_size", self.vocab_size, 1, u32::MAX as usize)?;
        int_in(file, "hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        int_in(file, "num_hidden_layers", self.num_hidden_layers, 1, 4096)?;
        int_in(file, "num_attention_heads", self.num_attention_heads, 1, self.hidden_size)?;
        int_in(file, "intermediate_size", self.intermediate_size, 1, MAX_WIDTH * 16)?;
        int_in(file, "max_position_embeddings", self.max_position_embeddings, 1, u32::MAX as usize)?;
        int_in(file, "type_vocab_size", self.type_vocab_size, 1, u32::MAX as usize)?;
        float_in(file, "layer_norm_eps", self.layer_norm_eps as f64, 0.0, 1.0)?;
        if self.pad_token_id as usize >= self.vocab_size {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "pad_token_id is {}; it must be a token id below vocab_size {}",
                    self.pad_token_id, self.vocab_size
                ),
            });
        }
        Ok(())
    }

    /// Checks that a checkpoint's tensor names hold exactly `num_hidden_layers` layers
    /// (`encoder.layer.{n}.`, with or without a leading `bert.`); `file` names the config.
    pub fn check_layers<'n>(&self, names: impl IntoIterator<Item = &'n str>, file: &str) -> Result<()> {
        let present = names
            .into_iter()
            .filter_map(|n| {
                let n = n.strip_prefix("bert.").unwrap_or(n);
                n.strip_prefix("encoder.layer.")?.split('.').next()?.parse::<usize>().ok()
            })
            .max()
            .map_or(0, |n| n + 1);
        if present == self.num_hidden_layers {
            return Ok(());
        }
        Err(Error::Model {
            file: file.into(),
            detail: format!(
                "num_hidden_layers is {} but the checkpoint has tensors for {present} layers (encoder.layer.N)",
                self.num_hidden_layers
            ),
        })
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// How sentence-transformers turns token states into one embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Pooling {
    /// Average over the non-padding tokens (all-MiniLM-L6-v2).
    Mean,
    /// The first ([CLS]) token's state.
    Cls,
    /// Elementwise maximum over the tokens.
    Max,
}

/// The sentence-transformers wrapping of an encoder: `sentence_bert_config.json`,
/// `1_Pooling/config.json` and `modules.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SentenceConfig {
    /// Longer inputs are truncated to this many tokens, [CLS] and [SEP] included.
    pub max_seq_length: usize,
    pub pooling: Pooling,
    /// L2-normalise the pooled vector (a `Normalize` module in `modules.json`).
    pub normalize: bool,
}

impl SentenceConfig {
    /// Reads the three side files (pass their bytes; `modules.json` may be absent, then no
    /// normalisation). `dir` names the model folder in errors.
    pub fn from_json(
        sentence_bert_config: &[u8],
        pooling_config: &[u8],
        modules: Option<&[u8]>,
        dir: &str,
    ) -> Result<Self> {
        let err = |f: &str, detail: String| Error::Model { file: format!("{dir}/{f}"), detail };
        let sb: serde_json::Value = serde_json::from_slice(sentence_bert_config)
            .map_err(|e| err("sentence_bert_config.json", format!("not JSON: {e}")))?;
        let max_seq_length = sb
            .get("max_seq_length")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| err("sentence_bert_config.json", "has no integer max_seq_length".into()))?
            as usize;
        if max_seq_length == 0 {
            return Err(err(
                "sentence_bert_config.json",
                "max_seq_length is 0; it must be at least 1 (longer inputs are truncated to it)".into(),
            ));
        }
        let pc: serde_json::Value = serde_json::from_slice(pooling_config)
            .map_err(|e| err("1_Pooling/config.json", format!("not JSON: {e}")))?;
        let on = |k: &str| pc.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let pooling = match (
            on("pooling_mode_mean_tokens"),
            on("pooling_mode_cls_token"),
            on("pooling_mode_max_tokens"),
        ) {
            (true, false, false) => Pooling::Mean,
            (false, true, false) => Pooling::Cls,
            (false, false, true) => Pooling::Max,
            _ => return Err(err(
                "1_Pooling/config.json",
                "must enable exactly one of pooling_mode_mean_tokens, pooling_mode_cls_token, pooling_mode_max_tokens"
                    .into(),
            )),
        };
        let normalize = match modules {
            None => false,
            Some(m) => {
                let mv: serde_json::Value =
                    serde_json::from_slice(m).map_err(|e| err("modules.json", format!("not JSON: {e}")))?;
                mv.as_array().is_some_and(|a| {
                    a.iter().any(|m| m.get("type").and_then(|t| t.as_str()).is_some_and(|t| t.ends_with(".Normalize")))
                })
            }
        };
        Ok(Self { max_seq_length, pooling, normalize })
    }
}
