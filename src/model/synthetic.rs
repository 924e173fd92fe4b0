//! Models of a real model's exact shapes and GGUF types, with seeded random weights, built in
//! memory. Speed does not depend on the weights' values, so these benchmark a model where its
//! file cannot go (a GPU machine that takes no large files) and make runs reproducible.
//!
//! ```
//! let model = webformer::model::synthetic::llama("smollm2-135m", 1)?;
//! assert_eq!(model.config.n_layers, 30);
//! # Ok::<(), webformer::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::model::{HostTensor, Llama, LlamaConfig, Weights};
use crate::tensor::{DType, HostData, QK};

/// The models `llama` can build, by name.
pub const LLAMA_NAMES: &[&str] = &["smollm2-135m"];

/// SmolLM2-135M-Instruct as its Q4_1 GGUF stores it: 30 layers of width 576, 9 query and 3
/// key/value heads of 64, a SwiGLU of 1536, 49152 tokens with a tied Q8_0 embedding, every
/// projection Q4_1 and the norms f32 (the types read off the file scripts/fetch-models.sh
/// fetches).
fn smollm2_135m() -> (LlamaConfig, DType, DType) {
    let config = LlamaConfig {
        n_layers: 30,
        hidden: 576,
        n_heads: 9,
        n_kv_heads: 3,
        head_dim: 64,
        rope_dim: 64,
        ffn: 1536,
        vocab: 49152,
        rope_theta: 100000.0,
        rms_eps: 1e-5,
        context_length: 8192,
        bos_id: Some(1),
        eos_id: Some(2),
        tied_embeddings: true,
        chat_template: None,
    };
    (config, DType::Q8_0, DType::Q4_1)
}

/// Refuses a name not in [`LLAMA_NAMES`] (cheaply, before anything is built).
pub fn check_name(name: &str) -> Result<()> {
    if LLAMA_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    Err(Error::Usage(format!("no synthetic model named '{name}'; known: {}", LLAMA_NAMES.join(", "))))
}

/// A Llama decoder named in [`LLAMA_NAMES`], with weights drawn from `seed`.
pub fn llama(name: &str, seed: u64) -> Result<Llama> {
    check_name(name)?;
    // One model so far; a second one becomes a match on the name here.
    let (c, embed_type, proj_type) = smollm2_135m();
    let mut rng = SplitMix(seed);
    let mut w = Weights::new(&format!("synthetic {name} (seed {seed})"));
    let (d, q, kv) = (c.hidden, c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
    w.insert("token_embd.weight", random(&mut rng, embed_type, &[c.vocab, d]));
    w.insert("output_norm.weight", norm(d));
    for l in 0..c.n_layers {
        let shapes = [
            ("attn_q", [q, d]),
            ("attn_k", [kv, d]),
            ("attn_v", [kv, d]),
            ("attn_output", [d, q]),
            ("ffn_gate", [c.ffn, d]),
            ("ffn_up", [c.ffn, d]),
            ("ffn_down", [d, c.ffn]),
        ];
        for (t, shape) in shapes {
            w.insert(&format!("blk.{l}.{t}.weight"), random(&mut rng, proj_type, &shape));
        }
        w.insert(&format!("blk.{l}.attn_norm.weight"), norm(d));
        w.insert(&format!("blk.{l}.ffn_norm.weight"), norm(d));
    }
    Llama::from_parts(c, w)
}

/// RMSNorm weights of ones.
fn norm(d: usize) -> HostTensor {
    HostTensor { shape: vec![d], data: HostData::F32(vec![1.0; d]) }
}

/// A `[rows, cols]` tensor of `dtype` with random values within about ±0.05 (small enough that
/// 30 layers stay finite): for block types, random quants under random per-block scales, laid
/// out as GGUF stores them (Q8_0: f16 scale, 32 i8; Q4_1: f16 scale, f16 minimum, 16 bytes of
/// nibbles). Any other dtype gets f32 values.
fn random(rng: &mut SplitMix, dtype: DType, shape: &[usize; 2]) -> HostTensor {
    let n = shape[0] * shape[1];
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    let mut bytes = Vec::with_capacity(dtype.bytes_for(n));
    let data = match dtype {
        DType::Q8_0 => {
            for _ in 0..n / QK {
                bytes.extend_from_slice(&f16(0.0003 + rng.uniform() * 0.0001));
                bytes.extend((0..QK).map(|_| rng.next() as u8));
            }
            HostData::Quant { dtype, len: n, bytes }
        }
        DType::Q4_1 => {
            for _ in 0..n / QK {
                bytes.extend_from_slice(&f16(0.006 + rng.uniform() * 0.001));
                bytes.extend_from_slice(&f16(-0.05 + rng.uniform() * 0.005));
                bytes.extend((0..QK / 2).map(|_| rng.next() as u8));
            }
            HostData::Quant { dtype, len: n, bytes }
        }
        _ => HostData::F32((0..n).map(|_| rng.uniform() * 0.1 - 0.05).collect()),
    };
    HostTensor { shape: shape.to_vec(), data }
}

/// SplitMix64: a tiny, fast, well-mixed generator; reproducible weights need nothing more,
/// and rand is only a dev-dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        super::generate::splitmix64(self.0)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}
