// Plain-JS references for the smoke test, computed in float64.
//
// GELU needs erf accurate to ~1e-12 to judge an f32 GPU kernel: the usual Abramowitz & Stegun
// 7.1.26 formula is only good to ~1e-7, as coarse as what it would be checking. Here erf uses
// two expansions that are exact up to rounding in their ranges:
//   |x| < 3:  erf(x) (and erfc = 1 - erf below 2)  = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
//             (all terms positive, so no cancellation; A&S 7.1.6)
//   x >= 2:   erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
//             (continued fraction, A&S 7.1.14, evaluated with the modified Lentz method)

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

function erfSeries(x) {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 0; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

function erfcContinuedFraction(x) {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    d = 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return ONE_OVER_SQRT_PI * Math.exp(-x * x) / f;
}

/** erfc(x) for any x, accurate relative to its value also in the far tail. */
export function erfc(x) {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) return 1 - erfSeries(x); // erfc(2) = 0.0047: loses < 2 digits to cancellation
  if (x > 27) return 0; // below the smallest double
  return erfcContinuedFraction(x);
}

/** erf(x) for any x. */
export function erf(x) {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  const r = ax < 3 ? erfSeries(ax) : 1 - erfcContinuedFraction(Math.min(ax, 27));
  return x < 0 ? -r : r;
}

/** GELU with the exact erf: x * Phi(x). For x < 0 via erfc, so the small tail keeps its digits. */
export function gelu(x) {
  return x >= 0 ? 0.5 * x * (1 + erf(x / Math.SQRT2)) : 0.5 * x * erfc(-x / Math.SQRT2);
}

/** a [m, k] · b [k, n] -> [m, n], row-major, accumulated in float64. */
export function matmul(a, b, m, k, n) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** mulberry32: a tiny seeded PRNG, so every run sees the same inputs. Returns [0, 1). */
export function rng(seed) {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [lo, hi), rounded to f32 (the GPU sees exactly these). */
export function uniformF32(next, n, lo, hi) {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * next();
  return v;
}

/**
 * Compares got (f32) with want (f64): element i passes when |got - want| <= atol + rtol * |want|.
 * Returns the worst absolute error, the worst relative error among elements with
 * rtol * |want| >= atol (near zero only atol applies), and the first failing index (-1 if none).
 */
export function compare(got, want, rtol = 1e-4, atol = 1e-5) {
  let maxAbsErr = 0;
  let maxRelErr = 0;
  let firstBad = -1;
  if (got.length !== want.length) return { ok: false, maxAbsErr: Infinity, maxRelErr: Infinity, firstBad: 0, lengthMismatch: [got.length, want.length] };
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const bad = !(err <= atol + rtol * Math.abs(want[i])); // NaN fails too
    if (bad && firstBad < 0) firstBad = i;
    if (!(err <= maxAbsErr)) maxAbsErr = err;
    // Relative error only where it means something: where the relative term dominates atol.
    if (rtol * Math.abs(want[i]) >= atol && !(err / Math.abs(want[i]) <= maxRelErr)) maxRelErr = err / Math.abs(want[i]);
  }
  return { ok: firstBad < 0, maxAbsErr, maxRelErr, firstBad };
}
