//! Elementwise family (shaders/elementwise.wgsl): add, mul, scale and activations.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Cx, Dispatch, KernelKey, Lowered};
use crate::error::Result;
use crate::graph::{Activation, Elementwise, Scalar};

/// Threads per workgroup, as in the shader.
pub const WORKGROUP: u32 = 256;
/// Marks "use the constant factor" in `Params::slot`.
pub const NO_SLOT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Add,
    Mul,
    Scale,
    GeluErf,
    GeluTanh,
    Silu,
    Relu,
    Tanh,
}

impl Variant {
    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Add => "add",
            Variant::Mul => "mul",
            Variant::Scale => "scale",
            Variant::GeluErf => "gelu_erf",
            Variant::GeluTanh => "gelu_tanh",
            Variant::Silu => "silu",
            Variant::Relu => "relu",
            Variant::Tanh => "act_tanh",
        }
    }

    pub fn n_inputs(self) -> u32 {
        match self {
            Variant::Add | Variant::Mul => 2,
            _ => 1,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    n_b: u32,
    factor: f32,
    slot: u32,
}

/// Launch for an elementwise op over `out` (which has the shape of the first input).
pub fn lower(cx: &Cx, op: &Elementwise) -> Result<Lowered> {
    let n: usize = cx.out.iter().product();
    let mut params = Params { n: as_u32("elementwise output", n)?, n_b: 1, factor: 1.0, slot: NO_SLOT };
    let variant = match *op {
        Elementwise::Add | Elementwise::Mul => {
            params.n_b = as_u32("elementwise operand", cx.shape(1).iter().product())?;
            if *op == Elementwise::Add {
                Variant::Add
            } else {
                Variant::Mul
            }
        }
        Elementwise::Scale(Scalar::Const(f)) => {
            params.factor = f;
            Variant::Scale
        }
        Elementwise::Scale(Scalar::Runtime(slot)) => {
            params.slot = slot;
            Variant::Scale
        }
        Elementwise::Activation(Activation::GeluErf) => Variant::GeluErf,
        Elementwise::Activation(Activation::GeluTanh) => Variant::GeluTanh,
        Elementwise::Activation(Activation::Silu) => Variant::Silu,
        Elementwise::Activation(Activation::Relu) => Variant::Relu,
        Elementwise::Activation(Activation::Tanh) => Variant::Tanh,
    };
    Ok(Dispatch::new(KernelKey::Elementwise(variant), &params, grid_1d(n as u64, WORKGROUP, cx.max_per_dim())?).into())
}

/// The constants shaders/elementwise.wgsl shares with this module.
pub fn wgsl_consts() -> String {
    super::wgsl_u32(&[("WG", WORKGROUP as u64), ("NO_SLOT", NO_SLOT as u64)])
}
