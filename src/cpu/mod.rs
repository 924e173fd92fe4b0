//! Plain-loop references: the oracle every kernel is tested against. Written for clarity,
//! in f64 where accumulation order would otherwise blur the comparison.

pub mod copy;
pub mod elementwise;
pub mod gemm;
pub mod matmul;
pub mod quant;

use crate::error::Result;
use crate::graph::{Op, Scalar};
use crate::tensor::HostData;

/// Evaluates one op on host data. `runtime` holds the run's runtime slots.
pub fn eval(op: &Op, inputs: &[&HostData], shapes: &[&[usize]], out: &[usize], runtime: &[u32]) -> Result<HostData> {
    if *op == Op::Reshape {
        return Ok(inputs[0].clone());
    }
    let f = |i: usize| inputs[i].as_f32(op.name());
    Ok(HostData::F32(match *op {
        Op::Add => elementwise::add(f(0)?, f(1)?),
        Op::Mul => elementwise::mul(f(0)?, f(1)?),
        Op::Scale(s) => elementwise::scale(f(0)?, scalar(s, runtime)),
        Op::Activation(act) => elementwise::activation(f(0)?, act),
        Op::Matmul { trans_b, bias, act, .. } => {
            // b may be f16 or quantized: the reference widens it exactly (llama.cpp's dequantization).
            let b = inputs[1].to_f32();
            let mut y = matmul::matmul(f(0)?, &b, shapes[0], shapes[1], out, trans_b);
            if bias {
                y = elementwise::add(&y, f(2)?);
            }
            match act {
                Some(act) => elementwise::activation(&y, act),
                None => y,
            }
        }
        Op::WriteRows { slot } => copy::write_rows(f(0)?, f(1)?, shapes[0][1], runtime[slot as usize] as usize),
        Op::Reshape => unreachable!("handled above"),
    }))
}

fn scalar(s: Scalar, runtime: &[u32]) -> f32 {
    match s {
        Scalar::Const(v) => v,
        Scalar::Runtime(slot) => f32::from_bits(runtime[slot as usize]),
    }
}
