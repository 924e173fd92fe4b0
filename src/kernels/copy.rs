//! Copy family (shaders/copy.wgsl): in-place row writes into state (KV caches), row ranges.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey};
use crate::error::Result;

pub const WORKGROUP: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    WriteRows,
    Rows,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::WriteRows => "write_rows",
            Variant::Rows => "rows",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    cols: u32,
    arg: u32,
    slot: u32,
}

/// Launch for writing src: [r, cols] into state: [rows, cols] at the row in `slot`.
pub fn dispatch(slot: u32, inputs: &[&[usize]], max_per_dim: u32) -> Result<Dispatch> {
    let (state, src) = (inputs[0], inputs[1]);
    let n: usize = src.iter().product();
    let params = Params {
        n: as_u32("write_rows source", n)?,
        cols: as_u32("write_rows columns", state[1])?,
        arg: as_u32("write_rows state rows", state[0])?,
        slot,
    };
    Ok(Dispatch {
        key: KernelKey::Copy(Variant::WriteRows),
        params: bytemuck::bytes_of(&params).to_vec(),
        workgroups: grid_1d(n as u64, WORKGROUP, max_per_dim)?,
    })
}

/// Launch for copying rows start..start+count of src: [rows, cols] (leading dims flattened).
pub fn rows(start: u32, src: &[usize], out: &[usize], max_per_dim: u32) -> Result<Dispatch> {
    let n: usize = out.iter().product();
    let params = Params { n: as_u32("rows output", n)?, cols: as_u32("rows columns", src[src.len() - 1])?, arg: start, slot: 0 };
    Ok(Dispatch {
        key: KernelKey::Copy(Variant::Rows),
        params: bytemuck::bytes_of(&params).to_vec(),
        workgroups: grid_1d(n as u64, WORKGROUP, max_per_dim)?,
    })
}
