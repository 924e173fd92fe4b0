//! Matmul family (shaders/matmul.wgsl): the straightforward batched kernel.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey};
use crate::error::Result;

/// Output tile edge of one workgroup, as in the shader.
pub const TILE: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// One invocation per output element.
    Naive,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Naive => "matmul",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    trans_b: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    batch: u32,
    tiles_n: u32,
}

/// Launch for a: [..., m, k] times b: [k, n] / [..., k, n] (or their [n, k] transposes).
/// Shapes were checked when the node was built.
pub fn dispatch(trans_b: bool, inputs: &[&[usize]], out: &[usize], max_per_dim: u32) -> Result<Dispatch> {
    let (a, b) = (inputs[0], inputs[1]);
    let k = a[a.len() - 1];
    let (m, n) = (out[out.len() - 2], out[out.len() - 1]);
    let batch: usize = out[..out.len() - 2].iter().product();
    let b_batched = b.len() > 2;
    let params = Params {
        m: as_u32("matmul m", m)?,
        n: as_u32("matmul n", n)?,
        k: as_u32("matmul k", k)?,
        trans_b: trans_b as u32,
        stride_a: as_u32("matmul a", m * k)?,
        stride_b: if b_batched { as_u32("matmul b", k * n)? } else { 0 },
        stride_c: as_u32("matmul c", m * n)?,
        batch: as_u32("matmul batch", batch)?,
        tiles_n: as_u32("matmul tiles", n.div_ceil(TILE as usize))?,
    };
    let tiles = (n.div_ceil(TILE as usize) * m.div_ceil(TILE as usize)) as u64 * batch as u64;
    Ok(Dispatch {
        key: KernelKey::Matmul(Variant::Naive),
        params: bytemuck::bytes_of(&params).to_vec(),
        workgroups: grid_1d(tiles, 1, max_per_dim)?,
    })
}
