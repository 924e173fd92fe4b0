//! Model loading on the host: reading and parsing a GGUF, copying its tensors out, building its
//! tokenizer and tokenizing text. No GPU involved; wall clock, medians of repeats.

use std::path::Path;
use std::time::Instant;

use super::median;
use crate::error::Result;
use crate::model::{read_file, Gguf, LlamaConfig, Tokenizer};

/// English-like text with numbers, punctuation and code (~1 KB, repeated to the size asked).
const TEXT: &str = "The quick brown fox jumps over the lazy dog. In 2024, 3.14159 and 1,000,000 were \
numbers; prices rose 12% (from $1999.99). def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + \
fibonacci(n - 2)\nÜnïcödé text, café and naïve façades; emoji 🤖 too. She said: \"It's what we'd've \
done, isn't it?\" URL https://example.com/path?query=1&x=y#frag, e-mail someone@example.org. ";

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t0 = Instant::now();
    let v = f()?;
    Ok((v, t0.elapsed().as_secs_f64()))
}

/// Times loading `path` (a GGUF with a byte-level BPE tokenizer) `repeats` times.
pub fn run(path: &Path, repeats: usize, text_bytes: usize) -> Result<serde_json::Value> {
    let name = path.display().to_string();
    let (bytes, read_s) = timed(|| read_file(path))?;
    let repeats = repeats.max(1);
    let (mut parse, mut tensors, mut tok_build, mut encode) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut text = String::new();
    while text.len() < text_bytes {
        text.push_str(TEXT);
    }
    let mut n_tokens = 0;
    let mut tensor_bytes = 0usize;
    let mut cfg = None;
    for _ in 0..repeats {
        let (g, s) = timed(|| Gguf::parse(&bytes, &name))?;
        parse.push(s);
        let (total, s) = timed(|| {
            let mut total = 0;
            for t in g.tensors() {
                total += g.tensor(&t.name)?.data.as_bytes().len();
            }
            Ok(total)
        })?;
        tensor_bytes = total;
        tensors.push(s);
        let (tok, s) = timed(|| Tokenizer::from_gguf(&g))?;
        tok_build.push(s);
        let (ids, s) = timed(|| tok.encode(&text, false))?;
        n_tokens = ids.len();
        encode.push(s);
        cfg = Some(LlamaConfig::from_gguf(&g).map(|c| (c.n_layers, c.hidden, c.vocab)).ok());
    }
    let (parse_s, tensors_s, tok_s, enc_s) =
        (median(&mut parse), median(&mut tensors), median(&mut tok_build), median(&mut encode));
    Ok(serde_json::json!({
        "bench": "load", "file": name, "file_bytes": bytes.len(), "repeats": repeats,
        "llama_layers_hidden_vocab": cfg.flatten(),
        "read_ms": read_s * 1e3,
        "parse_ms": parse_s * 1e3,
        "tensors_ms": tensors_s * 1e3, "tensor_bytes": tensor_bytes, "tensors_gb_per_s": tensor_bytes as f64 / tensors_s / 1e9,
        "tokenizer_build_ms": tok_s * 1e3,
        "encode_bytes": text.len(), "encode_tokens": n_tokens, "encode_ms": enc_s * 1e3,
        "encode_tokens_per_s": n_tokens as f64 / enc_s, "encode_mb_per_s": text.len() as f64 / enc_s / 1e6,
    }))
}
