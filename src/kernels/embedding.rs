//! Embedding family (shaders/embedding.wgsl): rows of a [V, D] table gathered by u32 ids,
//! widened to f32. Ids >= V give zero rows.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, quant, Cx, Dispatch, KernelKey, Lowered};
use crate::error::{Error, Result};
use crate::tensor::{numel, DType, QK};

/// Invocations per workgroup, as in the shader (one per output element).
pub const WORKGROUP: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    F32,
    F16,
    Q8_0,
    Q4_1,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::F32 => "embedding_f32",
            Variant::F16 => "embedding_f16",
            Variant::Q8_0 => "embedding_q8_0",
            Variant::Q4_1 => "embedding_q4_1",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    len: u32,
    d: u32,
    v: u32,
    d_word: u32,
    m_word: u32,
    groups_x: u32,
}

/// The launch for an embedding node: inputs are the table [V, D] and the ids.
pub fn lower(cx: &Cx) -> Result<Lowered> {
    let (inputs, out, max_per_dim) = (cx.inputs, cx.out, cx.max_per_dim());
    let table = inputs[0];
    let (v, d) = (table.shape[0], table.shape[1]);
    let variant = match table.dtype {
        DType::F32 => Variant::F32,
        DType::F16 => Variant::F16,
        DType::Q8_0 => Variant::Q8_0,
        DType::Q4_1 => Variant::Q4_1,
        other => {
            return Err(Error::DType {
                what: "embedding: the table".into(),
                expected: "f32, f16, q8_0 or q4_1".into(),
                got: other.to_string(),
            })
        }
    };
    // Table and output element indices are formed in u32 (saturating: 32-bit hosts must not wrap).
    let elements = as_u32("embedding table elements", v.saturating_mul(d))? as usize;
    let len = numel(out);
    let (d_word, m_word) = quant::plane_words(table.dtype, elements / QK);
    let workgroups = grid_1d(len as u64, WORKGROUP, max_per_dim)?;
    let params = Params {
        len: as_u32("embedding output elements", len)?,
        d: as_u32("embedding width", d)?,
        v: as_u32("embedding rows", v)?,
        d_word: as_u32("embedding table words", d_word)?,
        m_word: as_u32("embedding table words", m_word)?,
        groups_x: workgroups[0],
    };
    Ok(Dispatch::new(KernelKey::Embedding(variant), &params, workgroups).into())
}

/// The constants shaders/embedding.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
