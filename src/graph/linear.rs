//! Fused linear layers: a matmul node (`Op::Matmul`) with an RMSNorm prologue, a SwiGLU pair
//! of weights, and a residual added as the epilogue, so that a decoder's projections each take
//! one launch instead of three to five (see `kernels::matmul` for how each is lowered).

use super::{shape_err, Activation, Graph, MatmulImpl, MatmulParams, NodeId, NodeKind, Op};
use crate::error::{Error, Result};
use crate::tensor::DType;

/// What a fused linear layer computes besides x · wᵀ; see `Graph::linear_with`. The default is
/// a plain linear layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinearFusion {
    /// Added to every row of the product (shape [out]); not with `up`.
    pub bias: Option<NodeId>,
    /// Applied after the bias; not with `up` (SwiGLU is its own activation).
    pub act: Option<Activation>,
    /// SwiGLU: the product becomes silu(x · wᵀ) · (x · upᵀ), `up` of w's shape and dtype.
    pub up: Option<NodeId>,
    /// RMSNorm prologue: x is replaced by rms_norm(x, gain [in], eps) (Llama's pre-norm).
    pub rms: Option<(NodeId, f32)>,
    /// Added last, of the output's shape (a residual stream).
    pub residual: Option<NodeId>,
    pub imp: MatmulImpl,
}

impl Graph {
    /// A linear layer with fused parts, one node:
    /// y = act(rms_norm(x) · wᵀ + bias) [· (rms_norm(x) · upᵀ) with SwiGLU] + residual.
    /// x [..., in] (f32), w [out, in] (f32, f16, q8_0 or q4_1); see `LinearFusion`.
    pub fn linear_with(&mut self, x: NodeId, w: NodeId, f: LinearFusion) -> Result<NodeId> {
        let name = if f.up.is_some() { "linear_swiglu" } else { "linear_fused" };
        let sx = self.f32_input(name, x)?.shape.clone();
        let nw = self.get(name, w)?;
        let (sw, dw) = (nw.shape.clone(), nw.dtype);
        if dw == DType::U32 {
            return Err(Error::DType {
                what: format!("{name}: the weight (#{})", w.0),
                expected: "f32, f16, q8_0 or q4_1".into(),
                got: dw.to_string(),
            });
        }
        if sx.len() < 2 || sw.len() != 2 || sx[sx.len() - 1] != sw[1] {
            return Err(shape_err(
                name,
                format!("needs x [..., in] (rank >= 2) and a weight [out, in], got {sx:?} and {sw:?}"),
            ));
        }
        let (k, n) = (sw[1], sw[0]);
        let mut out = sx[..sx.len() - 1].to_vec();
        out.push(n);
        let mut inputs = vec![x, w];
        if let Some(bias) = f.bias {
            let sb = &self.f32_input(name, bias)?.shape;
            if sb[..] != [n] {
                return Err(shape_err(name, format!("the bias must have shape [{n}], got {sb:?}")));
            }
            inputs.push(bias);
        }
        if let Some(up) = f.up {
            if f.bias.is_some() || f.act.is_some() {
                return Err(shape_err(name, "SwiGLU takes no bias and no other activation".into()));
            }
            let nu = self.get(name, up)?;
            if nu.shape != sw || nu.dtype != dw {
                return Err(shape_err(
                    name,
                    format!("the up weight must match the gate weight ({sw:?} {dw}), got {:?} {}", nu.shape, nu.dtype),
                ));
            }
            inputs.push(up);
        }
        if let Some((gain, eps)) = f.rms {
            Self::check_eps(name, eps)?;
            self.norm_weight(name, gain, "RMSNorm gain", k)?;
            inputs.push(gain);
        }
        if let Some(r) = f.residual {
            let sr = &self.f32_input(name, r)?.shape;
            if *sr != out {
                return Err(shape_err(name, format!("the residual must have the output's shape {out:?}, got {sr:?}")));
            }
            inputs.push(r);
        }
        let op = MatmulParams {
            trans_b: true,
            bias: f.bias.is_some(),
            act: f.act,
            imp: f.imp,
            swiglu: f.up.is_some(),
            rms: f.rms.map(|(_, eps)| eps),
            residual: f.residual.is_some(),
        };
        Ok(self.push(NodeKind::Op(Op::Matmul(op)), inputs, out, DType::F32))
    }

    /// The SwiGLU pair of a gated MLP in one node: silu(x · w_gateᵀ) · (x · w_upᵀ), both
    /// weights [ffn, in] of one dtype.
    pub fn linear_swiglu(&mut self, x: NodeId, w_gate: NodeId, w_up: NodeId) -> Result<NodeId> {
        self.linear_with(x, w_gate, LinearFusion { up: Some(w_up), ..Default::default() })
    }
}
