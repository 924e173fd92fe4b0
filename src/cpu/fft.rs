//! Reference FFT in f64, any length: a mixed-radix Stockham transform for lengths whose prime
//! factors are small (radix 4, 2, 3, 5 and generic odd radices up to `MAX_RADIX`), Bluestein's
//! chirp-z through a power-of-two transform for the rest; batched along any axis. Also the
//! FNet token mixing, Re(FFT over the hidden axis, then over the sequence axis).
//!
//! Conventions (numpy's and torch's): the forward transform is X[k] = Σ x[j]·e^(-2πi·jk/n),
//! unnormalised; the inverse uses e^(+2πi·jk/n) and divides by n, so inverse(forward(x)) = x.
//!
//! ```
//! use webformer::cpu::fft::{fft, C64};
//! let x = vec![C64::new(1.0, 0.0); 3];
//! let y = fft(&x, false);
//! assert!((y[0].re - 3.0).abs() < 1e-12 && y[1].re.abs() < 1e-12);
//! ```

use std::ops::{Add, Mul, Sub};

/// A complex number in f64.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    pub fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }

    pub fn scale(self, s: f64) -> Self {
        Self::new(self.re * s, self.im * s)
    }

    /// e^(i·2π·a/b) for integers a, b (a reduced mod b first, so the angle is exact).
    pub fn root(a: u64, b: u64) -> Self {
        let t = std::f64::consts::TAU * ((a % b) as f64 / b as f64);
        Self::new(t.cos(), t.sin())
    }
}

impl Add for C64 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for C64 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for C64 {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self::new(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)
    }
}

/// Largest radix the Stockham path uses (generic O(r²) butterflies); a length with a larger
/// prime factor goes through Bluestein.
pub const MAX_RADIX: usize = 31;

/// The radices of a Stockham plan for `n` (4s first, then 2, 3, 5 and other primes), or None
/// when `n` has a prime factor above `max_radix`.
pub fn radices(mut n: usize, max_radix: usize) -> Option<Vec<usize>> {
    let mut r = Vec::new();
    while n.is_multiple_of(4) {
        r.push(4);
        n /= 4;
    }
    let mut p = 2;
    while n > 1 {
        if p > max_radix {
            return None;
        }
        if n.is_multiple_of(p) {
            r.push(p);
            n /= p;
        } else {
            p += 1;
        }
    }
    Some(r)
}

/// A transform of one length and direction, its tables computed once.
pub struct Plan {
    n: usize,
    inverse: bool,
    kind: Kind,
}

enum Kind {
    /// Radices and the n-th roots of unity (sign of the direction applied).
    Stockham { radices: Vec<usize>, roots: Vec<C64> },
    /// Chirp w[j] = e^(∓iπ j²/n), the transform of the conjugate chirp padded to m, and the
    /// forward plan of length m (a power of two).
    Bluestein { chirp: Vec<C64>, kernel: Vec<C64>, inner: Box<Plan> },
}

impl Plan {
    /// Plans a transform of length `n` (>= 1); `inverse` includes the 1/n.
    pub fn new(n: usize, inverse: bool) -> Self {
        assert!(n >= 1, "an FFT needs at least one element");
        let kind = match radices(n, MAX_RADIX) {
            Some(radices) => {
                let sign = if inverse { 1 } else { n as u64 - 1 };
                // Root j is e^(±2πi·j/n): the sign folded into the exact integer angle.
                let roots = (0..n as u64).map(|j| C64::root(j * sign, n as u64)).collect();
                Kind::Stockham { radices, roots }
            }
            None => Self::bluestein(n, inverse),
        };
        Self { n, inverse, kind }
    }

    fn bluestein(n: usize, inverse: bool) -> Kind {
        let m = (2 * n - 1).next_power_of_two();
        let two_n = 2 * n as u64;
        // j² mod 2n keeps the chirp's angle exact at any length.
        let chirp: Vec<C64> = (0..n as u64)
            .map(|j| {
                let a = (j * j) % two_n;
                C64::root(if inverse { a } else { two_n - a }, two_n)
            })
            .collect();
        let inner = Box::new(Plan::new(m, false));
        let mut b = vec![C64::default(); m];
        b[0] = chirp[0].conj();
        for j in 1..n {
            b[j] = chirp[j].conj();
            b[m - j] = chirp[j].conj();
        }
        let kernel = inner.run(&b);
        Kind::Bluestein { chirp, kernel, inner }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The transform of `x` (length n).
    pub fn run(&self, x: &[C64]) -> Vec<C64> {
        assert_eq!(x.len(), self.n, "FFT plan of length {} given {} values", self.n, x.len());
        let mut y = match &self.kind {
            Kind::Stockham { radices, roots } => stockham(x, radices, roots),
            Kind::Bluestein { chirp, kernel, inner } => {
                let m = kernel.len();
                let mut a = vec![C64::default(); m];
                for j in 0..self.n {
                    a[j] = x[j] * chirp[j];
                }
                let a = inner.run(&a);
                // The inverse transform of a·kernel as the conjugate of a forward one.
                let prod: Vec<C64> = a.iter().zip(kernel).map(|(&u, &v)| (u * v).conj()).collect();
                let c = inner.run(&prod);
                (0..self.n).map(|k| c[k].conj().scale(1.0 / m as f64) * chirp[k]).collect()
            }
        };
        if self.inverse {
            let s = 1.0 / self.n as f64;
            y.iter_mut().for_each(|v| *v = v.scale(s));
        }
        y
    }
}

/// Mixed-radix Stockham autosort: pass r takes butterflies i = 0..n/r, k = i mod p (p = product
/// of earlier radices), inputs x[i + s·n/r] twiddled by ω^(s·k·n/(p·r)), a radix-r DFT, outputs
/// to y[(i - k)·r + k + t·p]. No bit reversal: the order sorts itself out pass by pass.
fn stockham(x: &[C64], radices: &[usize], roots: &[C64]) -> Vec<C64> {
    let n = x.len();
    let (mut src, mut dst) = (x.to_vec(), vec![C64::default(); n]);
    let mut p = 1;
    let mut u = vec![C64::default(); MAX_RADIX];
    for &r in radices {
        let q = n / r;
        let step = n / (p * r);
        for i in 0..q {
            let k = i % p;
            for (s, v) in u.iter_mut().enumerate().take(r) {
                *v = src[i + s * q] * roots[(s * k * step) % n];
            }
            let j = (i - k) * r + k;
            for t in 0..r {
                let mut acc = C64::default();
                for (s, v) in u.iter().enumerate().take(r) {
                    acc = acc + *v * roots[(s * t * (n / r)) % n];
                }
                dst[j + t * p] = acc;
            }
        }
        std::mem::swap(&mut src, &mut dst);
        p *= r;
    }
    src
}

/// The transform of one sequence (plans it each call; use `Plan` to reuse tables).
pub fn fft(x: &[C64], inverse: bool) -> Vec<C64> {
    Plan::new(x.len(), inverse).run(x)
}

/// The transform along `axis` of a row-major array of `shape`, every other index a batch.
pub fn fft_axis(x: &[C64], shape: &[usize], axis: usize, inverse: bool) -> Vec<C64> {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    assert_eq!(x.len(), outer * n * inner, "fft_axis: {} values for shape {shape:?}", x.len());
    let plan = Plan::new(n, inverse);
    let mut y = vec![C64::default(); x.len()];
    let mut row = vec![C64::default(); n];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            for (j, v) in row.iter_mut().enumerate() {
                *v = x[at(j)];
            }
            for (j, v) in plan.run(&row).into_iter().enumerate() {
                y[at(j)] = v;
            }
        }
    }
    y
}

/// Interleaved f32 pairs [.., 2] as complex numbers.
pub fn from_interleaved(x: &[f32]) -> Vec<C64> {
    x.chunks_exact(2).map(|c| C64::new(c[0] as f64, c[1] as f64)).collect()
}

/// Complex numbers as interleaved f32 pairs.
pub fn to_interleaved(x: &[C64]) -> Vec<f32> {
    x.iter().flat_map(|c| [c.re as f32, c.im as f32]).collect()
}

/// The graph op on complex data stored as f32 [.., n, .., 2]: the transform along `axis` of
/// `shape` (which includes the trailing 2).
pub fn fft_interleaved(x: &[f32], shape: &[usize], axis: usize, inverse: bool) -> Vec<f32> {
    let c = from_interleaved(x);
    to_interleaved(&fft_axis(&c, &shape[..shape.len() - 1], axis, inverse))
}

/// FNet's token mixing of x [.., L, D] (f32): Re(FFT over D, then over L), unnormalised, as
/// Hugging Face computes `torch.fft.fftn(h, dim=(1, 2)).real`. Leading dimensions are batches.
pub fn fnet_mixing(x: &[f32], shape: &[usize]) -> Vec<f32> {
    let r = shape.len();
    let (l, d) = (shape[r - 2], shape[r - 1]);
    let b = x.len() / (l * d);
    let c: Vec<C64> = x.iter().map(|&v| C64::new(v as f64, 0.0)).collect();
    let y = fft_axis(&c, &[b, l, d], 2, false);
    let y = fft_axis(&y, &[b, l, d], 1, false);
    y.iter().map(|v| v.re as f32).collect()
}

/// The O(n²) DFT in f64, with exact integer angle reduction: the slow oracle of the fast paths.
pub fn dft_naive(x: &[C64], inverse: bool) -> Vec<C64> {
    let n = x.len() as u64;
    let mut y: Vec<C64> = (0..n)
        .map(|k| {
            x.iter().enumerate().fold(C64::default(), |acc, (j, &v)| {
                let a = (j as u64 * k) % n;
                acc + v * C64::root(if inverse { a } else { (n - a) % n }, n)
            })
        })
        .collect();
    if inverse {
        y.iter_mut().for_each(|v| *v = v.scale(1.0 / n as f64));
    }
    y
}

/// The reference of an FFT node.
pub fn eval(cx: &super::Cx, op: &crate::graph::FftOp) -> crate::error::Result<crate::tensor::HostData> {
    let (x, shape) = (cx.f32(0, "fft")?, cx.shapes[0]);
    Ok(crate::tensor::HostData::F32(match *op {
        crate::graph::FftOp::Mix(_) => fnet_mixing(x, shape),
        crate::graph::FftOp::Complex { axis, inverse } => fft_interleaved(x, shape, axis as usize, inverse),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radices_cover_small_primes_only() {
        assert_eq!(radices(768, MAX_RADIX), Some(vec![4, 4, 4, 4, 3]));
        assert_eq!(radices(1000, MAX_RADIX), Some(vec![4, 2, 5, 5, 5]));
        assert_eq!(radices(1, MAX_RADIX), Some(vec![]));
        assert_eq!(radices(1009, MAX_RADIX), None);
    }
}
