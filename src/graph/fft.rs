//! Builders for the FFT family: FNet's token mixing (`fourier_mix`) and a general complex
//! transform along one axis (`fft`), complex data stored as f32 [.., 2] (re, im interleaved).
//!
//! ```
//! use webformer::{DType, Graph};
//! let mut g = Graph::new();
//! let h = g.input("h", &[2, 13, 36], DType::F32).unwrap();   // [B, L, D]
//! let mixed = g.fourier_mix(h).unwrap();                      // Re(FFT2), same shape
//! assert_eq!(g.node(mixed).shape, vec![2, 13, 36]);
//! let z = g.input("z", &[5, 7, 2], DType::F32).unwrap();      // 5 x 7 complex
//! let zf = g.fft(z, 0, false).unwrap();                       // along the 5
//! assert!(g.fft(z, 2, false).is_err());                       // the trailing 2 is no axis
//! ```

use serde::Serialize;

use super::{shape_err, Graph, NodeId, NodeKind, Op};
use crate::error::Result;
use crate::tensor::DType;

/// How a `fourier_mix` node is computed; every choice gives the same result (up to rounding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum MixImpl {
    /// The lowering's choice: today the FFT everywhere. Measured with `webformer bench fft`
    /// (BENCHMARKS.md, "FFT or DFT-as-matmul"), the DFT path was slower at every size tried on
    /// lavapipe (1.2× to 19× at L = 16 to 2048, D = 64 and 768), where the GEMM runs far below
    /// a GPU's rate; a device where it wins shows so in the same benchmark, and then Auto
    /// takes it there.
    #[default]
    Auto,
    /// Two FFTs (Stockham / Bluestein) on the real-input path, O(L·D·log(L·D)).
    Fft,
    /// DFT matrices through the GEMM: Re(F_L·X·F_D) = [C_L | −S_L]·[X·C_D ; X·S_D],
    /// O(L·D·(L + D)) flops on the tuned GEMM in 5 launches (HF's TPU path does this up to
    /// L = 4096). Refused when a matrix exceeds the device's binding size.
    Dft,
}

/// The FFT family's ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum FftOp {
    /// Real x [.., L, D] -> Re(FFT over D, then over L), unnormalised: FNet's mixing layer,
    /// `torch.fft.fftn(h, dim=(-2, -1)).real`.
    Mix(MixImpl),
    /// Complex x [.., 2] transformed along `axis` (counted without the trailing 2); the
    /// forward transform is unnormalised, the inverse divides by the length.
    Complex { axis: u8, inverse: bool },
}

impl Graph {
    /// FNet token mixing: x f32 [L, D] or [B, L, D] -> Re(FFT2(x)) of the same shape, the
    /// transforms over the last two dimensions (any lengths).
    pub fn fourier_mix(&mut self, x: NodeId) -> Result<NodeId> {
        self.fourier_mix_with(x, MixImpl::Auto)
    }

    /// `fourier_mix` computed as `imp` says (benchmarks and tests pin one path).
    pub fn fourier_mix_with(&mut self, x: NodeId, imp: MixImpl) -> Result<NodeId> {
        let name = "fourier_mix";
        let shape = self.f32_input(name, x)?.shape.clone();
        if !(2..=3).contains(&shape.len()) {
            return Err(shape_err(name, format!("needs x [L, D] or [B, L, D], got {shape:?}")));
        }
        Ok(self.push(NodeKind::Op(Op::Fft(FftOp::Mix(imp))), vec![x], shape, DType::F32))
    }

    /// The discrete Fourier transform of complex x [.., 2] (f32 pairs re, im) along `axis`,
    /// every other dimension a batch; `inverse` uses e^(+2πi·jk/n) and divides by n, so
    /// `fft(fft(x, a, false), a, true)` is x.
    pub fn fft(&mut self, x: NodeId, axis: usize, inverse: bool) -> Result<NodeId> {
        let name = if inverse { "fft (inverse)" } else { "fft" };
        let shape = self.f32_input(name, x)?.shape.clone();
        if shape.len() < 2 || shape[shape.len() - 1] != 2 || shape.len() > 5 {
            return Err(shape_err(
                name,
                format!("needs complex data as f32 [.., 2] (re, im) of rank 2 to 5, got {shape:?}"),
            ));
        }
        if axis + 1 >= shape.len() {
            return Err(shape_err(
                name,
                format!(
                    "axis {axis} is not a dimension of the complex array {:?} (the trailing 2 holds re and im)",
                    &shape[..shape.len() - 1]
                ),
            ));
        }
        let op = Op::Fft(FftOp::Complex { axis: axis as u8, inverse });
        Ok(self.push(NodeKind::Op(op), vec![x], shape, DType::F32))
    }
}
