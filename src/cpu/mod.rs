//! Plain-loop references: the oracle every kernel is tested against. Written for clarity,
//! in f64 where accumulation order would otherwise blur the comparison.

pub mod attention;
pub mod copy;
pub mod elementwise;
pub mod embedding;
pub mod fft;
pub mod gemm;
pub mod layout;
pub mod matmul;
pub mod norm;
pub mod quant;
pub mod rope;
pub mod sample;
pub mod softmax;

use crate::error::Result;
use crate::graph::{FftOp, Op, Scalar};
use crate::tensor::HostData;

/// Evaluates one op on host data. `runtime` holds the run's runtime slots.
pub fn eval(op: &Op, inputs: &[&HostData], shapes: &[&[usize]], out: &[usize], runtime: &[u32]) -> Result<HostData> {
    if *op == Op::Reshape {
        return Ok(inputs[0].clone());
    }
    if *op == Op::Embedding {
        let HostData::U32(ids) = inputs[1] else {
            return Err(crate::error::Error::DType {
                what: "embedding ids".into(),
                expected: "u32".into(),
                got: inputs[1].dtype().to_string(),
            });
        };
        return Ok(HostData::F32(embedding::embedding(inputs[0], shapes[0][0], shapes[0][1], ids)));
    }
    let f = |i: usize| inputs[i].as_f32(op.name());
    if let (Op::WriteRows { slot }, HostData::F16(state)) = (op, inputs[0]) {
        // An f16 state (KV cache) takes the rows rounded to f16, as the copy_f16 kernel does.
        let state: Vec<f32> = state.iter().map(|x| x.to_f32()).collect();
        let y = copy::write_rows(&state, f(1)?, shapes[0][1], runtime[*slot as usize] as usize);
        return Ok(HostData::F16(y.into_iter().map(half::f16::from_f32).collect()));
    }
    // Attention keys and values may be f16 (widened exactly).
    let (kf, vf) = match op {
        Op::Attention(_) => (inputs[1].to_f32(), inputs[2].to_f32()),
        _ => (Vec::new(), Vec::new()),
    };
    let last = |s: &[usize]| s[s.len() - 1];
    // Ops with u32 results.
    match *op {
        Op::Argmax => return Ok(HostData::U32(sample::argmax(f(0)?, last(shapes[0])))),
        Op::Sample { top_k, top_p, temperature_slot, seed_slot } => {
            let t = f32::from_bits(runtime[temperature_slot as usize]);
            return Ok(HostData::U32(sample::sample(
                f(0)?,
                last(shapes[0]),
                top_k,
                top_p,
                t,
                runtime[seed_slot as usize],
            )));
        }
        _ => {}
    }
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
        Op::Rows { start, count } => copy::rows(f(0)?, out[1], start as usize, count as usize),
        Op::Softmax(sp) => {
            let keep = sp.mask.then(|| softmax::mask_keep(inputs[1]));
            softmax::softmax(f(0)?, out, &sp, keep.as_deref())
        }
        Op::Permute { perm, rank } => layout::permute(f(0)?, shapes[0], &perm[..rank as usize]),
        Op::Attention(a) => {
            let keep = a.mask.then(|| softmax::mask_keep(inputs[3]));
            attention::attention(f(0)?, &kf, &vf, &attention::Dims::of(shapes), &a, runtime, keep.as_deref())
        }
        Op::LayerNorm { eps } => norm::layer_norm(f(0)?, f(1)?, f(2)?, last(shapes[0]), eps),
        Op::RmsNorm { eps } => norm::rms_norm(f(0)?, f(1)?, last(shapes[0]), eps),
        Op::Rope { mode, theta, slot } => rope::rope(f(0)?, shapes[0], mode, theta, runtime[slot as usize]),
        Op::Fft(FftOp::Mix) => fft::fnet_mixing(f(0)?, shapes[0]),
        Op::Fft(FftOp::Complex { axis, inverse }) => fft::fft_interleaved(f(0)?, shapes[0], axis as usize, inverse),
        Op::Reshape | Op::Embedding | Op::Argmax | Op::Sample { .. } => unreachable!("handled above"),
    }))
}

fn scalar(s: Scalar, runtime: &[u32]) -> f32 {
    match s {
        Scalar::Const(v) => v,
        Scalar::Runtime(slot) => f32::from_bits(runtime[slot as usize]),
    }
}
