//! Quantized matmul for prefill (shaders/qmatmul.wgsl): Y = act(X · Wᵀ + bias) for X with
//! more than one row and a Q8_0 / Q4_1 weight W [N, K], tiled 64 x 64 with the W tile
//! dequantized into workgroup memory one 32-wide block column at a time.

use bytemuck::{Pod, Zeroable};

use super::matmul::act_code;
use super::{as_u32, grid_1d, quant, Dispatch, KernelKey};
use crate::error::{Error, Result};
use crate::graph::Activation;
use crate::tensor::{DType, QK};

/// Output tile edges, as in the shader.
pub const TILE_M: u32 = 64;
pub const TILE_N: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Q8_0 { bias: bool },
    Q4_1 { bias: bool },
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Q8_0 { bias: false } => "qmatmul_q8_0",
            Variant::Q8_0 { bias: true } => "qmatmul_q8_0_bias",
            Variant::Q4_1 { bias: false } => "qmatmul_q4_1",
            Variant::Q4_1 { bias: true } => "qmatmul_q4_1_bias",
        }
    }

    /// X and W, then the bias when there is one.
    pub fn n_inputs(self) -> u32 {
        match self {
            Variant::Q8_0 { bias } | Variant::Q4_1 { bias } => 2 + bias as u32,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    tiles_n: u32,
    act: u32,
    d_word: u32,
    m_word: u32,
    groups_x: u32,
}

/// The launch for Y [m, n] = act(X [m, k] · Wᵀ + bias), W [n, k] of a quantized `dtype`;
/// `m` counts the rows of all batch dimensions together (W is shared by the batch).
pub fn lower(
    dtype: DType,
    m: usize,
    k: usize,
    n: usize,
    bias: bool,
    act: Option<Activation>,
    max_per_dim: u32,
) -> Result<Dispatch> {
    let variant = match dtype {
        DType::Q8_0 => Variant::Q8_0 { bias },
        DType::Q4_1 => Variant::Q4_1 { bias },
        other => {
            return Err(Error::DType {
                what: "quantized matmul: the weight".into(),
                expected: "q8_0 or q4_1".into(),
                got: other.to_string(),
            })
        }
    };
    if !k.is_multiple_of(QK) {
        return Err(Error::Shape {
            op: "quantized matmul".into(),
            detail: format!("a {dtype} weight needs rows that are whole blocks of {QK}, got k = {k}"),
        });
    }
    // Element indices of X, W and Y are formed in u32 (saturating: a 32-bit host must not wrap).
    as_u32("quantized matmul x elements", m.saturating_mul(k))?;
    as_u32("quantized matmul y elements", m.saturating_mul(n))?;
    let elements = as_u32("quantized matmul weight elements", n.saturating_mul(k))? as usize;
    let (d_word, m_word) = quant::plane_words(dtype, elements / QK);
    let tiles_n = n.div_ceil(TILE_N as usize);
    let tiles = m.div_ceil(TILE_M as usize) as u64 * tiles_n as u64;
    let workgroups = grid_1d(tiles, 1, max_per_dim)?;
    let params = Params {
        m: as_u32("quantized matmul m", m)?,
        n: as_u32("quantized matmul n", n)?,
        k: as_u32("quantized matmul k", k)?,
        tiles_n: as_u32("quantized matmul tiles", tiles_n)?,
        act: act_code(act),
        d_word: as_u32("quantized matmul weight words", d_word)?,
        m_word: as_u32("quantized matmul weight words", m_word)?,
        groups_x: workgroups[0],
    };
    Ok(Dispatch::new(KernelKey::QMatmul(variant), &params, workgroups))
}

/// The constants shaders/qmatmul.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("BM", TILE_M as u64), ("BN", TILE_N as u64)])
}
