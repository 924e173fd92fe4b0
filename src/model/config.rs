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

impl LlamaConfig {
    /// Reads the hyperparameters of a GGUF whose `general.architecture` is `llama`.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::Model {
                file: g.file().into(),
                detail: format!("general.architecture is '{arch}'; LlamaConfig reads 'llama' models"),
            });
        }
        let k = |s: &str| format!("{arch}.{s}");
        let hidden = g.u32(&k("embedding_length"))? as usize;
        let n_heads = g.u32(&k("attention.head_count"))? as usize;
        if n_heads == 0 || !hidden.is_multiple_of(n_heads) {
            return Err(Error::Model {
                file: g.file().into(),
                detail: format!(
                    "{arch}.attention.head_count is {n_heads}, which does not divide the hidden size {hidden}"
                ),
            });
        }
        let n_kv_heads = g.u32_opt(&k("attention.head_count_kv"))?.map_or(n_heads, |v| v as usize);
        if n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(Error::Model {
                file: g.file().into(),
                detail: format!(
                    "{arch}.attention.head_count_kv is {n_kv_heads}, which does not divide the {n_heads} query heads"
                ),
            });
        }
        let head_dim = g.u32_opt(&k("attention.key_length"))?.map_or(hidden / n_heads, |v| v as usize);
        let vocab = match g.u32_opt(&k("vocab_size"))? {
            Some(v) => v as usize,
            None => g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map(|a| a.len()).ok_or_else(|| {
                Error::Model {
                    file: g.file().into(),
                    detail: format!(
                        "has neither {arch}.vocab_size nor tokenizer.ggml.tokens, so the vocabulary size is unknown"
                    ),
                }
            })?,
        };
        Ok(Self {
            n_layers: g.u32(&k("block_count"))? as usize,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_dim: g.u32_opt(&k("rope.dimension_count"))?.map_or(head_dim, |v| v as usize),
            ffn: g.u32(&k("feed_forward_length"))? as usize,
            vocab,
            rope_theta: g.f64_opt(&k("rope.freq_base"))?.unwrap_or(10000.0) as f32,
            rms_eps: g.f64_opt(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5) as f32,
            context_length: g.u32(&k("context_length"))? as usize,
            bos_id: g.u32_opt("tokenizer.ggml.bos_token_id")?,
            eos_id: g.u32_opt("tokenizer.ggml.eos_token_id")?,
            tied_embeddings: g.tensor_info("output.weight").is_none(),
            chat_template: g.str_opt("tokenizer.chat_template")?.map(str::to_string),
        })
    }
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
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
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
