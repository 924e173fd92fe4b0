//! FFT family (shaders/fft.wgsl): batched 1-D complex transforms along any axis, and FNet's
//! token mixing as two of them. This module plans the launches: a length whose factors are
//! 2, 3 and 5 runs as one workgroup-memory launch when a line fits (`cap`), else one global
//! Stockham pass per radix; any other length goes through Bluestein (a chirp, three
//! power-of-two transforms and a pointwise product, in scratch buffers).

use bytemuck::{Pod, Zeroable};

use super::{as_u32, grid_1d, Dispatch, KernelKey, Lowered, Slot};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::graph::{FftOp, MatmulImpl, MixImpl};
use crate::tensor::DType;

/// Invocations per workgroup of every FFT kernel.
pub const WORKGROUP: u32 = 256;

/// The workgroup-memory size of the `fft_rows` kernel: lines of up to `points()` complex
/// values, held twice (ping-pong), 16 bytes per point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cap {
    /// 16 KiB, the WebGPU default (module fft).
    K16,
    /// 32 KiB (module fft_cap32; lavapipe, many desktop GPUs).
    K32,
    /// 48 KiB (module fft_cap48; NVIDIA).
    K48,
}

impl Cap {
    /// Points of one line the kernel holds.
    pub fn points(self) -> usize {
        match self {
            Cap::K16 => 1024,
            Cap::K32 => 2048,
            Cap::K48 => 3072,
        }
    }

    /// The largest size the adapter's workgroup storage allows.
    pub fn for_storage(bytes: u32) -> Self {
        match bytes {
            b if b >= 49152 => Cap::K48,
            b if b >= 32768 => Cap::K32,
            _ => Cap::K16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Whole lines in workgroup memory, every pass in one launch.
    Rows(Cap),
    /// One radix pass in global memory.
    Pass,
    /// Bluestein: the conjugate chirp, padded (writes only).
    BluesteinKernel,
    /// Bluestein: input times the chirp, padded.
    BluesteinChirp,
    /// Bluestein: pointwise product with the transformed kernel.
    BluesteinMul,
    /// Bluestein: the chirp times the convolution, into the destination.
    BluesteinOut,
    /// FNet mixing, hidden axis: two real rows' spectra separated from their paired transform.
    MixSplit,
    /// FNet mixing's last step: the columns left out by symmetry, mirrored from those computed.
    MixMirror,
    /// DFT-as-matmul: the matrix [C | ±S] of a length (writes only).
    DftMatrix,
    /// DFT-as-matmul: the first GEMM's [X·C | X·S] rows restacked as [X·C ; X·S].
    DftStack,
}

impl Variant {
    pub fn family(self) -> &'static str {
        match self {
            Variant::Rows(Cap::K32) => "fft_cap32",
            Variant::Rows(Cap::K48) => "fft_cap48",
            _ => "fft",
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Variant::Rows(_) => "fft_rows",
            Variant::Pass => "fft_pass",
            Variant::BluesteinKernel => "bluestein_kernel",
            Variant::BluesteinChirp => "bluestein_chirp",
            Variant::BluesteinMul => "bluestein_mul",
            Variant::BluesteinOut => "bluestein_out",
            Variant::MixSplit => "mix_split",
            Variant::MixMirror => "mix_mirror",
            Variant::DftMatrix => "dft_matrix",
            Variant::DftStack => "dft_stack",
        }
    }

    /// (outputs, inputs) storage bindings.
    pub fn io_counts(self) -> (u32, u32) {
        match self {
            Variant::BluesteinKernel | Variant::DftMatrix => (1, 0),
            Variant::BluesteinMul => (1, 2),
            _ => (1, 1),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    lines: u32,
    inner: u32,
    sign: f32,
    scale: f32,
    radix: u32,
    p: u32,
    stages: u32,
    codes0: u32,
    codes1: u32,
    rpw: u32,
    m: u32,
    src: [u32; 4],
    dst: [u32; 4],
    src_rows: u32,
}

/// Where a transform reads or writes: line q = (o, i) = (q / inner, q % inner), point j at
/// element o·os + i·is + j·es of `slot`, as `values` says.
#[derive(Clone, Copy, Debug)]
struct Side {
    slot: Slot,
    os: usize,
    is: usize,
    es: usize,
    values: Values,
}

/// What one point of a `Side` is (shaders/fft.wgsl `load` / `store`).
#[derive(Clone, Copy, Debug)]
enum Values {
    /// Two f32: re, im.
    Complex,
    /// One f32 (the imaginary part is zero on load, dropped on store).
    Real,
    /// Reads only: line q is real line 2q (re) and 2q + 1 (im, zero past `rows`), two real
    /// transforms for the price of one complex one (split apart by `mix_split`).
    Pair { rows: usize },
}

impl Values {
    fn code(self) -> u32 {
        match self {
            Values::Complex => 0,
            Values::Real => 1,
            Values::Pair { .. } => 2,
        }
    }
}

impl Side {
    /// Lines stored one after another, `n` points each (any `inner`).
    fn packed(slot: Slot, n: usize, inner: usize) -> Self {
        Self { slot, os: n * inner, is: n, es: 1, values: Values::Complex }
    }

    /// The real lines a `Pair` side holds (0 otherwise).
    fn rows(&self) -> Result<u32> {
        match self.values {
            Values::Pair { rows } => as_u32("fft lines", rows),
            _ => Ok(0),
        }
    }

    fn words(&self) -> Result<[u32; 4]> {
        Ok([
            as_u32("fft stride", self.os)?,
            as_u32("fft stride", self.is)?,
            as_u32("fft stride", self.es)?,
            self.values.code(),
        ])
    }
}

/// The radix-4/2/3/5 factorisation of n, or None when another prime divides it.
pub fn radices(n: usize) -> Option<Vec<u32>> {
    crate::cpu::fft::radices(n, 5).map(|r| r.into_iter().map(|x| x as u32).collect())
}

/// Most passes one `fft_rows` launch can run (4 bits each in two u32 codes).
const MAX_STAGES: usize = 16;

/// Collects the launches and scratch buffers of one node.
struct Planner {
    cap: Cap,
    max_per_dim: u32,
    dispatches: Vec<Dispatch>,
    scratch: Vec<u64>,
}

impl Planner {
    /// A new scratch buffer of `points` complex values.
    fn scratch(&mut self, points: usize) -> Slot {
        self.scratch_f32(2 * points)
    }

    /// A new scratch buffer of `n` f32 values.
    fn scratch_f32(&mut self, n: usize) -> Slot {
        self.scratch.push(4 * n as u64);
        Slot::Scratch(self.scratch.len() - 1)
    }

    fn push(&mut self, v: Variant, p: &Params, groups: u64, writes: Slot, reads: &[Slot]) -> Result<()> {
        let per = if matches!(v, Variant::Rows(_)) { 1 } else { WORKGROUP };
        let d = Dispatch::new(KernelKey::Fft(v), p, grid_1d(groups, per, self.max_per_dim)?).bind(&[writes], reads);
        self.dispatches.push(d);
        Ok(())
    }

    /// The transform of `lines` lines of n points (grouped by `inner`, see `Side`) from `src`
    /// to `dst`, with e^(sign·2πi·jk/n), every output times `scale`.
    #[allow(clippy::too_many_arguments)]
    fn transform(
        &mut self,
        n: usize,
        lines: usize,
        inner: usize,
        src: Side,
        dst: Side,
        sign: f32,
        scale: f32,
    ) -> Result<()> {
        let base = Params {
            n: as_u32("fft length", n)?,
            lines: as_u32("fft lines", lines)?,
            inner: as_u32("fft lines", inner)?,
            sign,
            scale,
            src: src.words()?,
            src_rows: src.rows()?,
            dst: dst.words()?,
            ..Default::default()
        };
        as_u32("fft elements", 2 * n * lines)?;
        match radices(n) {
            Some(r) if n <= self.cap.points() && r.len() <= MAX_STAGES => {
                let rpw = (self.cap.points() / n).min(lines).max(1);
                let code = |from: usize| r.iter().skip(from).take(8).enumerate().fold(0, |c, (s, &x)| c | x << (4 * s));
                let p = Params { stages: r.len() as u32, codes0: code(0), codes1: code(8), rpw: rpw as u32, ..base };
                self.push(Variant::Rows(self.cap), &p, lines.div_ceil(rpw) as u64, dst.slot, &[src.slot])
            }
            Some(r) => self.passes(&r, base, lines, src, dst),
            None => self.bluestein(base, src, dst),
        }
    }

    /// One global pass per radix, through two packed scratch buffers.
    fn passes(&mut self, r: &[u32], base: Params, lines: usize, src: Side, dst: Side) -> Result<()> {
        let n = base.n as usize;
        let temps = [self.scratch(lines * n), self.scratch(lines * n)];
        let mut from = src;
        let mut pp = 1u32;
        for (s, &radix) in r.iter().enumerate() {
            let last = s + 1 == r.len();
            let to = if last { dst } else { Side::packed(temps[s % 2], n, base.inner as usize) };
            let scale = if last { base.scale } else { 1.0 };
            let p = Params { radix, p: pp, src: from.words()?, dst: to.words()?, scale, ..base };
            self.push(Variant::Pass, &p, (lines * n / radix as usize) as u64, to.slot, &[from.slot])?;
            from = to;
            pp *= radix;
        }
        Ok(())
    }

    /// Chirp-z: X[k] = w[k]·(a ⊛ conj(w))[k] with a[j] = x[j]·w[j], the circular convolution
    /// of length m (a power of two >= 2n - 1) computed as IFFT(FFT(a)·FFT(kernel)). `base`
    /// is the transform's (length, lines, sign, scale, sides).
    fn bluestein(&mut self, base: Params, src: Side, dst: Side) -> Result<()> {
        let (n, lines, scale) = (base.n as usize, base.lines as usize, base.scale);
        let m = (2 * n - 1).next_power_of_two();
        let base = Params { m: as_u32("bluestein length", m)?, ..base };
        as_u32("bluestein elements", 2 * m * lines)?;
        let (k, kf) = (self.scratch(m), self.scratch(m));
        let (a, af) = (self.scratch(lines * m), self.scratch(lines * m));
        self.push(Variant::BluesteinKernel, &Params { lines: 1, ..base }, m as u64, k, &[])?;
        self.transform(m, 1, 1, Side::packed(k, m, 1), Side::packed(kf, m, 1), -1.0, 1.0)?;
        self.push(Variant::BluesteinChirp, &base, (lines * m) as u64, a, &[src.slot])?;
        self.transform(m, lines, 1, Side::packed(a, m, 1), Side::packed(af, m, 1), -1.0, 1.0)?;
        self.push(Variant::BluesteinMul, &base, (lines * m) as u64, a, &[af, kf])?;
        self.transform(m, lines, 1, Side::packed(a, m, 1), Side::packed(af, m, 1), 1.0, 1.0)?;
        let out = Params { scale: scale / m as f32, ..base };
        self.push(Variant::BluesteinOut, &out, (lines * n) as u64, dst.slot, &[af])
    }
}

/// FNet mixing of real x [b, l, d]: Re(FFT over d, then over l), on the real-input path.
/// Over the hidden axis, rows 2q and 2q + 1 go through one complex transform as re and im
/// (`Values::Pair`), half the transforms, and `mix_split` separates them: with Z that
/// transform, row 2q's spectrum is (Z[k] + conj Z[d - k]) / 2 and row 2q + 1's is
/// (Z[k] - conj Z[d - k]) / 2i. A real row's spectrum is conjugate-symmetric,
/// X[t, d - k] = conj(X[t, k]), so only its h = d/2 + 1 columns k <= d/2 are kept, and then
/// Re Y[m, d - k] = Re Y[(l - m) mod l, k]: only those columns go through the sequence-axis
/// transform, and `mix_mirror` fills in the others. Both axes thus do about half of the
/// complex 2-D transform's work.
fn mix(pl: &mut Planner, b: usize, l: usize, d: usize) -> Result<()> {
    let (h, rows) = (d / 2 + 1, b * l);
    // Over the hidden axis, two real rows per complex line, into packed scratch [rows/2, d].
    let pairs = rows.div_ceil(2);
    let z = pl.scratch(pairs * d);
    let src = Side { slot: Slot::Input(0), os: d, is: 0, es: 1, values: Values::Pair { rows } };
    pl.transform(d, pairs, 1, src, Side::packed(z, d, 1), -1.0, 1.0)?;
    // Each row's columns k < h into [b, l, h] complex.
    let mid = pl.scratch(rows * h);
    let p = Params {
        n: as_u32("fft length", d)?,
        lines: as_u32("fft lines", rows)?,
        inner: as_u32("fft lines", h)?,
        ..Default::default()
    };
    as_u32("fft elements", 2 * rows * h)?;
    pl.push(Variant::MixSplit, &p, (rows * h) as u64, mid, &[z])?;
    // Over the sequence axis (stride h in mid), real parts into [b, l, h] (the scratch is
    // counted in complex points, twice what real values need).
    let half = pl.scratch((rows * h).div_ceil(2));
    let from = Side { slot: mid, os: l * h, is: 1, es: h, values: Values::Complex };
    let to = Side { slot: half, os: l * h, is: 1, es: h, values: Values::Real };
    pl.transform(l, b * h, h, from, to, -1.0, 1.0)?;
    let p = Params {
        n: as_u32("fft length", d)?,
        lines: as_u32("fft lines", rows)?,
        inner: as_u32("fft lines", h)?,
        m: as_u32("fft length", l)?,
        ..Default::default()
    };
    as_u32("fft elements", rows * d)?;
    pl.push(Variant::MixMirror, &p, (rows * d) as u64, Slot::Output, &[half])
}

/// FNet mixing through the GEMM. With F_n = C_n − i·S_n (the cosine and sine matrices,
/// symmetric), Re(F_L·X·F_D) = C_L·(X·C_D) − S_L·(X·S_D): first T = X·[C_D | S_D] over all
/// b·L rows at once, then per batch Y = [C_L | −S_L]·[X·C_D ; X·S_D], the [L, 2L] matrix shared
/// by the batch (stride 0) and `dft_stack` turning T's halves into the stacked right factor.
/// 4·b·L·D·(L + D) flops on the tuned GEMM, against the FFT's ~b·L·D·log2(L·D) in several
/// memory-bound passes (`MixImpl::Dft`; `MixImpl` says when it wins).
fn mix_dft(pl: &mut Planner, ctx: &Context, b: usize, l: usize, d: usize) -> Result<()> {
    let (wd, wl) = (pl.scratch_f32(2 * d * d), pl.scratch_f32(2 * l * l));
    let (t, z) = (pl.scratch_f32(2 * b * l * d), pl.scratch_f32(2 * b * l * d));
    for (n, sign, w) in [(d, 1.0, wd), (l, -1.0, wl)] {
        as_u32("dft matrix elements", 2 * n * n)?;
        let p = Params { n: as_u32("dft length", n)?, sign, ..Default::default() };
        pl.push(Variant::DftMatrix, &p, (2 * n * n) as u64, w, &[])?;
    }
    let (kernel, _) = super::gemm::choose(ctx, MatmulImpl::Auto, DType::F32)?;
    let v = super::gemm::Variant { kernel, b: DType::F32, trans_b: false, bias: false };
    let first = super::gemm::dispatch(v, None, &[&[b * l, d], &[d, 2 * d]], &[b * l, 2 * d], pl.max_per_dim)?;
    pl.dispatches.push(first.bind(&[t], &[Slot::Input(0), wd]));
    let p = Params {
        n: as_u32("fft length", d)?,
        lines: as_u32("fft lines", b)?,
        m: as_u32("fft length", l)?,
        ..Default::default()
    };
    pl.push(Variant::DftStack, &p, (2 * b * l * d) as u64, z, &[t])?;
    let shapes: [&[usize]; 2] = [&[l, 2 * l], &[b, 2 * l, d]];
    let second = super::gemm::dispatch_with(v, None, &shapes, &[b, l, d], pl.max_per_dim, true)?;
    pl.dispatches.push(second.bind(&[Slot::Output], &[wl, z]));
    Ok(())
}

/// Bytes of the largest buffer the DFT path of mixing [b, l, d] needs (T and Z, or W_L).
fn dft_largest_buffer(b: usize, l: usize, d: usize) -> u64 {
    4 * (2 * b * l * d).max(2 * l * l).max(2 * d * d) as u64
}

/// Whether every buffer of the DFT path of mixing [b, l, d] fits one binding on this device.
pub fn dft_fits(ctx: &Context, b: usize, l: usize, d: usize) -> bool {
    dft_largest_buffer(b, l, d) <= ctx.limits().max_storage_buffer_binding_size
}

/// Launches of an FFT node (shapes were checked when it was built).
pub fn lower(cx: &super::Cx, op: &FftOp) -> Result<Lowered> {
    let (ctx, inputs, max_per_dim) = (cx.ctx, cx.inputs, cx.max_per_dim());
    let cap = Cap::for_storage(ctx.limits().max_compute_workgroup_storage_size);
    let mut pl = Planner { cap, max_per_dim, dispatches: Vec::new(), scratch: Vec::new() };
    let shape = inputs[0].shape;
    match *op {
        FftOp::Mix(imp) => {
            let r = shape.len();
            let (l, d) = (shape[r - 2], shape[r - 1]);
            let b: usize = shape[..r - 2].iter().product();
            let dft = match imp {
                // The FFT: measured, the DFT path was slower at every size tried (see MixImpl).
                MixImpl::Auto | MixImpl::Fft => false,
                MixImpl::Dft if !dft_fits(ctx, b, l, d) => {
                    return Err(Error::Usage(format!(
                        "fourier_mix [{b}, {l}, {d}] as DFT matrices needs a {} byte buffer, over this device's max_storage_buffer_binding_size of {}; use MixImpl::Fft or Auto",
                        dft_largest_buffer(b, l, d),
                        ctx.limits().max_storage_buffer_binding_size
                    )))
                }
                MixImpl::Dft => true,
            };
            if dft {
                mix_dft(&mut pl, ctx, b, l, d)?;
            } else {
                mix(&mut pl, b, l, d)?;
            }
        }
        FftOp::Complex { axis, inverse } => {
            let dims = &shape[..shape.len() - 1];
            let axis = axis as usize;
            let n = dims[axis];
            let inner: usize = dims[axis + 1..].iter().product();
            let outer: usize = dims[..axis].iter().product();
            let side = |slot| Side { slot, os: n * inner, is: 1, es: inner, values: Values::Complex };
            let (sign, scale) = if inverse { (1.0, 1.0 / n as f32) } else { (-1.0, 1.0) };
            pl.transform(n, outer * inner, inner, side(Slot::Input(0)), side(Slot::Output), sign, scale)?;
        }
    }
    if pl.dispatches.is_empty() {
        return Err(Error::Usage("an FFT node planned no launches".into()));
    }
    Ok(Lowered { dispatches: pl.dispatches, scratch: pl.scratch, bounds: Vec::new() })
}

/// The constants shaders/fft.wgsl shares with this module, per workgroup-memory size: lines of
/// up to FFT_CAP points, held twice (source and destination of a Stockham stage).
fn wgsl_consts(cap: Cap) -> String {
    let n = cap.points() as u64;
    super::wgsl_u32(&[("WG", WORKGROUP as u64), ("FFT_CAP", n), ("FFT_CAP2", 2 * n)])
}

pub fn wgsl_consts_k16() -> String {
    wgsl_consts(Cap::K16)
}

pub fn wgsl_consts_k32() -> String {
    wgsl_consts(Cap::K32)
}

pub fn wgsl_consts_k48() -> String {
    wgsl_consts(Cap::K48)
}
