//! Copy family (shaders/copy.wgsl): in-place row writes into state (KV caches), row ranges,
//! row concatenation; shaders/copy_f16.wgsl writes rows into f16 state (half-precision KV
//! caches).

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered, Operand, Slot};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::CopyOp;
use crate::tensor::DType;

pub const WORKGROUP: u32 = 256;

/// Launches of a copy node.
pub fn lower(cx: &Cx, op: &CopyOp) -> Result<Lowered> {
    match *op {
        CopyOp::WriteRows { slot } => write_rows(cx.ctx, slot, cx.inputs, cx.max_per_dim()),
        CopyOp::Rows { start, .. } => Ok(rows(start, cx.shape(0), cx.out, cx.max_per_dim())?.into()),
        CopyOp::ConcatRows => concat_rows(cx.inputs, cx.out, cx.max_per_dim()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    WriteRows,
    /// f32 rows rounded into an f16 state (module copy_f16, needs SHADER_F16).
    WriteRowsF16,
    Rows,
    /// A matrix placed at a row offset of the output (one launch per input of concat_rows).
    PlaceRows,
}

impl Variant {
    pub fn family(self) -> &'static str {
        match self {
            Variant::WriteRowsF16 => "copy_f16",
            _ => "copy",
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::WriteRows => "write_rows",
            Variant::WriteRowsF16 => "write_rows_f16",
            Variant::Rows => "rows",
            Variant::PlaceRows => "place_rows",
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

/// Launch for writing src: [r, cols] into state: [rows, cols] at the row in `slot` (an f16
/// state takes the rows rounded to f16). The node's value is the state itself (input 0), so
/// the kernel writes it and reads only the source; the rows must fit the state on every run.
fn write_rows(ctx: &Context, slot: u32, inputs: &[Operand], max_per_dim: u32) -> Result<Lowered> {
    let (state, src) = (inputs[0].shape, inputs[1].shape);
    let variant = if inputs[0].dtype == DType::F16 { Variant::WriteRowsF16 } else { Variant::WriteRows };
    if variant == Variant::WriteRowsF16 && !ctx.has(wgpu::Features::SHADER_F16) {
        return Err(Error::Feature {
            what: "writing rows into an f16 state (kernel family copy_f16)".into(),
            feature: "SHADER_F16",
            adapter: ctx.adapter().name.clone(),
        });
    }
    let n: usize = src.iter().product();
    let params = Params {
        n: as_u32("write_rows source", n)?,
        cols: as_u32("write_rows columns", state[1])?,
        arg: as_u32("write_rows state rows", state[0])?,
        slot,
    };
    let d = Dispatch::new(KernelKey::Copy(variant), &params, grid_1d(n as u64, WORKGROUP, max_per_dim)?)
        .bind(&[Slot::Output], &[Slot::Input(1)]);
    Ok(Lowered::from(d).with_bound(slot, src[0], state[0]))
}

/// Launch for copying rows start..start+count of src: [rows, cols] (leading dims flattened).
fn rows(start: u32, src: &[usize], out: &[usize], max_per_dim: u32) -> Result<Dispatch> {
    let n: usize = out.iter().product();
    let params =
        Params { n: as_u32("rows output", n)?, cols: as_u32("rows columns", src[src.len() - 1])?, arg: start, slot: 0 };
    Ok(Dispatch::new(KernelKey::Copy(Variant::Rows), &params, grid_1d(n as u64, WORKGROUP, max_per_dim)?))
}

/// The constants shaders/copy.wgsl and copy_f16.wgsl share with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64)])
}

/// Launches of concat_rows: input i is copied to the output from row Σ_{j<i} rows_j on.
fn concat_rows(inputs: &[Operand], out: &[usize], max_per_dim: u32) -> Result<Lowered> {
    let cols = out[out.len() - 1];
    let mut at = 0usize;
    let mut dispatches = Vec::with_capacity(inputs.len());
    for (i, x) in inputs.iter().enumerate() {
        let n: usize = x.shape.iter().product();
        let params = Params {
            n: as_u32("concat_rows input", n)?,
            cols: as_u32("concat_rows columns", cols)?,
            arg: as_u32("concat_rows row offset", at)?,
            slot: 0,
        };
        let grid = grid_1d(n as u64, WORKGROUP, max_per_dim)?;
        dispatches.push(
            Dispatch::new(KernelKey::Copy(Variant::PlaceRows), &params, grid).bind(&[Slot::Output], &[Slot::Input(i)]),
        );
        at += n / cols;
    }
    Ok(Lowered { dispatches, ..Default::default() })
}
