//! Layout family (shaders/layout.wgsl): permutation of up to 4 dimensions.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered};
use crate::error::Result;
use crate::graph::Permute;

/// Invocations per workgroup (one per output element), as in the shader.
pub const WORKGROUP: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Permute,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Permute => "permute",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
    out_dims: [u32; 4],
    in_strides: [u32; 4],
}

/// Launch for permuting `input` (rank `perm.len()`, at most 4) into `out`: the shapes are
/// padded to rank 4 with leading 1s, and output dimension k reads with the stride of input
/// dimension perm[k].
pub fn lower(cx: &Cx, p: &Permute) -> Result<Lowered> {
    let (perm, input, out, max_per_dim) = (&p.perm[..p.rank as usize], cx.shape(0), cx.out, cx.max_per_dim());
    let rank = input.len();
    let n: usize = input.iter().product();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * input[i + 1];
    }
    let mut params = Params { n: as_u32("permute elements", n)?, _pad: [0; 3], out_dims: [1; 4], in_strides: [0; 4] };
    for k in 0..rank {
        params.out_dims[4 - rank + k] = out[k] as u32;
        params.in_strides[4 - rank + k] = strides[perm[k] as usize] as u32;
    }
    Ok(Dispatch::new(KernelKey::Layout(Variant::Permute), &params, grid_1d(n as u64, WORKGROUP, max_per_dim)?).into())
}

/// The constants shaders/layout.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}
