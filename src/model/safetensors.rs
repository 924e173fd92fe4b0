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
            detail: match diagnose(bytes) {
                Some(why) => format!("not a readable safetensors file: {why}"),
                None => format!("not a readable safetensors file: {e}"),
            },
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

/// Bits per element of a safetensors dtype name, None for a name the format does not define.
fn dtype_bits(name: &str) -> Option<u64> {
    Some(match name {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "U16" | "I16" | "F16" | "BF16" => 16,
        "U32" | "I32" | "F32" => 32,
        "U64" | "I64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// Finds the tensor a header that `safetensors` refused is wrong about, for an error that
/// names it (the crate's own messages do not always): its dtype, a size that overflows, data
/// offsets that disagree with its shape, run past the file, or leave a gap or an overlap with
/// the tensor before. None when the header itself is unreadable (the crate's message says so).
fn diagnose(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = usize::try_from(n).ok()?.checked_add(8)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes.get(8..end)?).ok()?;
    let data_len = (bytes.len() - end) as u64;
    let mut spans = Vec::new();
    for (name, t) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = t.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        let Some(bits) = dtype_bits(dtype) else {
            return Some(format!("tensor '{name}' has dtype {dtype:?}, which safetensors does not define"));
        };
        let shape: Option<Vec<u64>> =
            t.get("shape").and_then(|s| s.as_array()).map(|a| a.iter().filter_map(|d| d.as_u64()).collect());
        let offsets: Option<Vec<u64>> =
            t.get("data_offsets").and_then(|s| s.as_array()).map(|a| a.iter().filter_map(|d| d.as_u64()).collect());
        let (Some(shape), Some(offsets)) = (shape, offsets.filter(|o| o.len() == 2)) else {
            return Some(format!("tensor '{name}' needs a shape of integers and two integer data_offsets"));
        };
        let (start, stop) = (offsets[0], offsets[1]);
        let Some(size) = shape.iter().try_fold(bits, |a, &d| a.checked_mul(d)).map(|b| b.div_ceil(8)) else {
            return Some(format!("tensor '{name}' has shape {shape:?}, whose byte size overflows 64 bits"));
        };
        if stop < start || stop - start != size {
            return Some(format!(
                "tensor '{name}' ({dtype}, shape {shape:?}) needs {size} bytes but its data_offsets are [{start}, {stop}]"
            ));
        }
        if stop > data_len {
            return Some(format!(
                "tensor '{name}' ends at byte {stop} of the data, but the file holds only {data_len} bytes of data (truncated?)"
            ));
        }
        spans.push((start, stop, name));
    }
    spans.sort();
    let mut at = (0, "the start of the data".to_string());
    for (start, stop, name) in spans {
        if start != at.0 {
            return Some(format!(
                "tensor '{name}' starts at byte {start} of the data, but {} ends at byte {}: tensors must follow each other without gaps or overlaps",
                at.1, at.0
            ));
        }
        at = (stop, format!("tensor '{name}'"));
    }
    None
}

impl std::fmt::Debug for Safetensors<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Safetensors").field("file", &self.file).field("tensors", &self.st.len()).finish()
    }
}
