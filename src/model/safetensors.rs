//! safetensors checkpoints (BERT / sentence-transformers), through Hugging Face's own
//! `safetensors` crate: it validates the JSON header, the offsets and the dtype sizes, and
//! borrows the bytes, so a read or memory-mapped file is not copied whole, and wasm works the
//! same from bytes. Names stay the checkpoint's (`encoder.layer.0.attention.self.query.weight`)
//! so a model's loading code is a lookup. Shapes are as stored: row-major, outermost first,
//! linear weights `[out, in]` as `Graph::matmul_t` takes them.
//!
//! ```
//! # fn demo(bytes: &[u8]) -> webformer::Result<()> {
//! let st = webformer::model::Safetensors::parse(bytes, "model.safetensors")?;
//! let w = st.tensor("embeddings.word_embeddings.weight")?;   // [vocab, hidden], f32
//! # Ok(()) }
//! ```

use safetensors::{Dtype, SafeTensors};

use super::HostTensor;
use crate::error::{Error, Result};
use crate::tensor::HostData;

/// A parsed safetensors file borrowing its bytes.
pub struct Safetensors<'a> {
    file: String,
    st: SafeTensors<'a>,
}

impl<'a> Safetensors<'a> {
    /// Parses the header; tensor data is read by [`Safetensors::tensor`]. `file` is only used
    /// in error messages.
    pub fn parse(bytes: &'a [u8], file: &str) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Model {
            file: file.to_string(),
            detail: format!("not a readable safetensors file: {e}"),
        })?;
        Ok(Self { file: file.to_string(), st })
    }

    /// The file name given to `parse` (for errors).
    pub fn file(&self) -> &str {
        &self.file
    }

    fn err(&self, detail: String) -> Error {
        Error::Model { file: self.file.clone(), detail }
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut n = self.st.names();
        n.sort_unstable();
        n
    }

    /// Shape and stored dtype name (`F32`, `BF16`, ...) of a tensor, if present.
    pub fn info(&self, name: &str) -> Option<(Vec<usize>, String)> {
        self.st.tensor(name).ok().map(|t| (t.shape().to_vec(), format!("{:?}", t.dtype())))
    }

    /// Loads one tensor: F32 and F16 as they are, BF16 widened to F32 (exact: a bf16 is the
    /// top half of an f32); other dtypes (integer buffers such as `position_ids`) are refused
    /// with an error naming the tensor.
    pub fn tensor(&self, name: &str) -> Result<HostTensor> {
        let t = self.st.tensor(name).map_err(|_| {
            let names = self.names();
            let near: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| n.ends_with(name.rsplit('.').next().unwrap_or(name)))
                .take(4)
                .collect();
            self.err(format!(
                "has no tensor named '{name}' ({} tensors, e.g. {})",
                names.len(),
                if near.is_empty() {
                    names.iter().take(4).copied().collect::<Vec<_>>().join(", ")
                } else {
                    near.join(", ")
                }
            ))
        })?;
        let shape = t.shape().to_vec();
        let bytes = t.data();
        let data = match t.dtype() {
            Dtype::F32 => HostData::F32(bytemuck::pod_collect_to_vec(bytes)),
            Dtype::F16 => HostData::F16(bytemuck::pod_collect_to_vec(bytes)),
            Dtype::BF16 => {
                HostData::F32(bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect())
            }
            other => {
                return Err(self.err(format!(
                    "tensor '{name}' has dtype {other:?}; webformer loads F32, F16 and BF16 (as f32) tensors"
                )))
            }
        };
        Ok(HostTensor { shape, data })
    }
}

impl std::fmt::Debug for Safetensors<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Safetensors").field("file", &self.file).field("tensors", &self.st.len()).finish()
    }
}
