//! Elementwise family (shaders/elementwise.wgsl): add, mul, scale and activations.

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey};
use crate::error::Result;
use crate::graph::{Activation, Op, Scalar};

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
pub fn dispatch(op: &Op, inputs: &[&[usize]], out: &[usize], max_per_dim: u32) -> Result<Dispatch> {
    let n: usize = out.iter().product();
    let mut params = Params { n: as_u32("elementwise output", n)?, n_b: 1, factor: 1.0, slot: NO_SLOT };
    let variant = match *op {
        Op::Add | Op::Mul => {
            params.n_b = as_u32("elementwise operand", inputs[1].iter().product())?;
            if *op == Op::Add {
                Variant::Add
            } else {
                Variant::Mul
            }
        }
        Op::Scale(Scalar::Const(f)) => {
            params.factor = f;
            Variant::Scale
        }
        Op::Scale(Scalar::Runtime(slot)) => {
            params.slot = slot;
            Variant::Scale
        }
        Op::Activation(Activation::GeluErf) => Variant::GeluErf,
        Op::Activation(Activation::GeluTanh) => Variant::GeluTanh,
        Op::Activation(Activation::Silu) => Variant::Silu,
        Op::Activation(Activation::Relu) => Variant::Relu,
        Op::Activation(Activation::Tanh) => Variant::Tanh,
        _ => unreachable!("elementwise::dispatch called for {op:?}"),
    };
    Ok(Dispatch::new(KernelKey::Elementwise(variant), &params, grid_1d(n as u64, WORKGROUP, max_per_dim)?))
}
