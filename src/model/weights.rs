//! A model's weights on the host, held once and shared by every graph built from it (a
//! prompt graph and a decode graph name the same `Arc`s; `SharedBuffers` then uploads each
//! weight once).

use std::collections::HashMap;
use std::sync::Arc;

use super::HostTensor;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
use crate::tensor::{DType, HostData};

/// One weight: shape (outermost first, `[out, in]` for linear layers) and shared host data.
#[derive(Clone, Debug)]
pub struct Weight {
    pub shape: Vec<usize>,
    pub data: Arc<crate::tensor::HostData>,
}

/// Weights by name, with the file they came from (named in errors).
#[derive(Clone, Debug, Default)]
pub struct Weights {
    file: String,
    tensors: HashMap<String, Weight>,
}

impl Weights {
    pub fn new(file: &str) -> Self {
        Self { file: file.into(), tensors: HashMap::new() }
    }

    pub fn insert(&mut self, name: &str, t: HostTensor) {
        self.tensors.insert(name.into(), Weight { shape: t.shape, data: Arc::new(t.data) });
    }

    pub fn get(&self, name: &str) -> Option<&Weight> {
        self.tensors.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Host bytes of all weights (quantized ones at their block size).
    pub fn bytes(&self) -> u64 {
        self.tensors.values().map(|w| w.data.as_bytes().len() as u64).sum()
    }

    /// The file the weights came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Replaces the matrices `parts` (each [out_i, in], one `in` for all) by one weight `name`
    /// [Σ out_i, in] holding their rows in order, so that one projection computes all of them
    /// (Q, K and V of an attention layer). GGUF's quantization blocks run along the input
    /// dimension and never cross a row, so rows of Q8_0/Q4_1 blocks concatenate as they are,
    /// byte for byte, like f32 and f16 rows. Parts of different dtypes are widened to f32
    /// first (exactly: every f16 and every dequantized block value is an f32).
    pub fn concat_rows(&mut self, name: &str, parts: &[&str]) -> Result<()> {
        let mut found = Vec::with_capacity(parts.len());
        for &part in parts {
            let w = self.tensors.get(part).ok_or_else(|| Error::Model {
                file: self.file.clone(),
                detail: format!("has no tensor '{part}' to concatenate into '{name}'"),
            })?;
            found.push(w);
        }
        let cols = found.first().map(|w| w.shape[w.shape.len() - 1]);
        if found.is_empty() || found.iter().any(|w| w.shape.len() != 2 || Some(w.shape[1]) != cols) {
            let shapes: Vec<&[usize]> = found.iter().map(|w| w.shape.as_slice()).collect();
            return Err(Error::Model {
                file: self.file.clone(),
                detail: format!("tensors {parts:?} cannot be stacked into '{name}': they must be matrices with one column count, got {shapes:?}"),
            });
        }
        let rows: usize = found.iter().map(|w| w.shape[0]).sum();
        let datas: Vec<&HostData> = found.iter().map(|w| w.data.as_ref()).collect();
        let data = stack(&datas);
        for part in parts {
            self.tensors.remove(*part);
        }
        let cols = cols.unwrap_or(0);
        self.tensors.insert(name.into(), Weight { shape: vec![rows, cols], data: Arc::new(data) });
        Ok(())
    }

    /// Checks that `name` exists with `shape` and holds only finite values (a NaN or an
    /// infinity in a weight, or in a quantized block's scale, would turn every output into
    /// NaN), or says which tensor of which file is wrong.
    pub fn expect(&self, name: &str, shape: &[usize], why: &str) -> Result<()> {
        match self.tensors.get(name) {
            Some(w) if w.shape == shape => check_finite(&w.data).map_err(|detail| Error::Model {
                file: self.file.clone(),
                detail: format!("tensor '{name}' {detail}; the file is corrupt"),
            }),
            None => Err(Error::Model {
                file: self.file.clone(),
                detail: format!("has no tensor '{name}', which {why} needs"),
            }),
            Some(w) if w.shape != shape => Err(Error::Model {
                file: self.file.clone(),
                detail: format!("tensor '{name}' has shape {:?}; {why} needs {shape:?}", w.shape),
            }),
            Some(_) => Ok(()),
        }
    }
}

/// The elements of `parts` one after another, in their common dtype, or in f32 when the dtypes
/// differ.
fn stack(parts: &[&HostData]) -> HostData {
    let dtype = parts[0].dtype();
    if parts.iter().any(|p| p.dtype() != dtype) {
        return HostData::F32(parts.iter().flat_map(|p| p.to_f32()).collect());
    }
    match dtype {
        DType::F32 => HostData::F32(parts.iter().flat_map(|p| p.to_f32()).collect()),
        DType::F16 | DType::U32 | DType::Q8_0 | DType::Q4_1 => {
            let bytes: Vec<u8> = parts.iter().flat_map(|p| p.as_bytes().iter().copied()).collect();
            HostData::from_bytes(dtype, parts.iter().map(|p| p.len()).sum(), &bytes)
        }
    }
}

/// Says where the first NaN or infinity of `data` is: an element of a float tensor, or the
/// scale (`d`) or minimum (`m`) of a quantized block, whose f16 values are the only ones in a
/// block that can be non-finite. One pass over floats, a read per block for quantized data.
pub fn check_finite(data: &HostData) -> std::result::Result<(), String> {
    let bad_block = |block: usize, fields: &[(&str, usize)]| {
        let bytes = data.as_bytes();
        bytes.chunks_exact(block).enumerate().find_map(|(i, b)| {
            fields.iter().find_map(|&(field, at)| {
                let v = half::f16::from_le_bytes([b[at], b[at + 1]]);
                (!v.is_finite()).then(|| format!("has {v} as the {field} of block {i}"))
            })
        })
    };
    let found = match data {
        HostData::F32(v) => v.iter().position(|x| !x.is_finite()).map(|i| format!("has {} at element {i}", v[i])),
        HostData::F16(v) => v.iter().position(|x| !x.is_finite()).map(|i| format!("has {} at element {i}", v[i])),
        HostData::U32(_) => None,
        HostData::Quant { dtype: DType::Q8_0, .. } => bad_block(34, &[("scale", 0)]),
        HostData::Quant { dtype: DType::Q4_1, .. } => bad_block(20, &[("scale", 0), ("minimum", 2)]),
        HostData::Quant { .. } => None,
    };
    found.map_or(Ok(()), Err)
}

/// A graph under construction that adds each weight it uses once, however often it is used
/// (tied embeddings use one table for the input and the LM head).
pub(crate) struct Builder<'a> {
    pub g: Graph,
    weights: &'a Weights,
    nodes: HashMap<String, NodeId>,
}

impl<'a> Builder<'a> {
    pub fn new(weights: &'a Weights) -> Self {
        Self { g: Graph::new(), weights, nodes: HashMap::new() }
    }

    /// The graph node of weight `name`.
    pub fn w(&mut self, name: &str) -> Result<NodeId> {
        if let Some(&id) = self.nodes.get(name) {
            return Ok(id);
        }
        let w = self.weights.get(name).ok_or_else(|| Error::Model {
            file: self.weights.file.clone(),
            detail: format!("has no tensor '{name}'"),
        })?;
        let id = self.g.weight_arc(name, &w.shape, w.data.clone())?;
        self.nodes.insert(name.into(), id);
        Ok(id)
    }
}
