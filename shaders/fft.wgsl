// Batched 1-D complex FFTs (src/kernels/fft.rs plans the launches).
//
// Data: every buffer is array<f32>; a complex value is two consecutive f32 (re, im), a real
// value one f32 (`*_real` flags). A transform runs over `lines` lines of n points; line q is
// (o, i) = (q / inner, q % inner) and its point j sits at element o·os + i·is + j·es of its
// buffer, so one kernel serves contiguous rows (es = 1) and strided columns (es = row length).
//
// Algorithm: mixed-radix Stockham autosort (radix 4, 2, 3, 5), no bit reversal. A pass of radix
// r over points of which the first passes have combined p: butterfly i (0 <= i < n/r) with
// k = i mod p reads x[i + s·n/r] (s < r), twiddles each by ω^(s·k) with ω = e^(±2πi/(p·r)),
// takes an r-point DFT and writes y[(i - k)·r + k + t·p] (t < r).
// - fft_rows: a workgroup holds `rpw` whole lines in workgroup memory (FFT_CAP points, two
//   halves for ping-pong) and runs every pass there: one launch for the whole transform.
// - fft_pass: one pass in global memory (lines longer than FFT_CAP): one launch per pass.
// - bluestein_*: the chirp-z transform for other lengths: X[k] = w[k]·Σ (x[j]·w[j])·conj(w[k-j])
//   with w[j] = e^(∓iπ·j²/n), a convolution computed with power-of-two FFTs of m >= 2n - 1.
//
// Twiddles: root(a, b) = e^(2πi·a/b) from integers, reduced to one octant exactly
// (8a = oct·b + rem) and evaluated with Taylor polynomials there (error < 2e-9), so accuracy
// does not depend on the backend's sin/cos (Vulkan allows those an absolute error of 2^-11).

struct Params {
    n: u32,          // points per line
    lines: u32,
    inner: u32,      // lines are (outer, inner) pairs; see the header
    sign: f32,       // -1 forward, +1 inverse (unnormalised; `scale` applies 1/n)
    scale: f32,      // multiplies every output
    radix: u32,      // fft_pass: this pass's radix
    p: u32,          // fft_pass: points combined by the earlier passes
    stages: u32,     // fft_rows: number of passes
    codes0: u32,     // fft_rows: radix of pass s in bits 4s..4s+3 (passes 0..7)
    codes1: u32,     // fft_rows: passes 8..15
    rpw: u32,        // fft_rows: lines per workgroup
    m: u32,          // bluestein_*: the padded transform length
    src_os: u32,
    src_is: u32,
    src_es: u32,
    src_real: u32,
    dst_os: u32,
    dst_is: u32,
    dst_es: u32,
    dst_real: u32,
    src_rows: u32,   // src_real == 2: the real lines the paired source holds
}

// WG, FFT_CAP and FFT_CAP2 come from src/kernels/fft.rs (wgsl_consts).
const PI_4: f32 = 0.78539816339744830962;
// cos and sin of 2π/5 and 4π/5, for the radix-5 butterfly.
const C51: f32 = 0.30901699437494742410;
const C52: f32 = -0.80901699437494742410;
const S51: f32 = 0.95105651629515357212;
const S52: f32 = 0.58778525229247312917;
const S3: f32 = 0.86602540378443864676;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read> kern: array<f32>;

// Two halves of FFT_CAP points each (FFT_CAP comes from the size prelude, fft_cap*.wgsl).
var<workgroup> sm: array<vec2<f32>, FFT_CAP2>;

// e^(2πi·a/b) for 0 <= a < b < 2^28.
fn root(a: u32, b: u32) -> vec2<f32> {
    let t = 8u * a;
    let oct = t / b;
    var rem = t - oct * b;
    // Odd octants run backwards from their end.
    if ((oct & 1u) == 1u) { rem = b - rem; }
    let x = f32(rem) / f32(b) * PI_4;
    let x2 = x * x;
    let s = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0)))));
    let c = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 + x2 * (-1.0 / 3628800.0)))));
    var v = vec2<f32>(c, s);
    switch oct {
        case 1u: { v = vec2<f32>(s, c); }
        case 2u: { v = vec2<f32>(-s, c); }
        case 3u: { v = vec2<f32>(-c, s); }
        case 4u: { v = vec2<f32>(-c, -s); }
        case 5u: { v = vec2<f32>(-s, -c); }
        case 6u: { v = vec2<f32>(s, -c); }
        case 7u: { v = vec2<f32>(c, -s); }
        default: {}
    }
    return v;
}

// e^(sign·2πi·a/b).
fn twiddle(a: u32, b: u32, sign: f32) -> vec2<f32> {
    let w = root(a, b);
    return vec2<f32>(w.x, sign * w.y);
}

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// i·sign·v
fn rot(v: vec2<f32>, sign: f32) -> vec2<f32> {
    return vec2<f32>(-sign * v.y, sign * v.x);
}

// The r-point DFT (r in 2..5) of u[0..r], in place, with e^(sign·2πi/r).
fn butterfly(r: u32, u: ptr<function, array<vec2<f32>, 5>>, sign: f32) {
    let a0 = (*u)[0];
    let a1 = (*u)[1];
    let a2 = (*u)[2];
    let a3 = (*u)[3];
    let a4 = (*u)[4];
    switch r {
        case 2u: {
            (*u)[0] = a0 + a1;
            (*u)[1] = a0 - a1;
        }
        case 3u: {
            let t = a1 + a2;
            let d = rot(a1 - a2, sign * S3);
            let h = a0 - 0.5 * t;
            (*u)[0] = a0 + t;
            (*u)[1] = h + d;
            (*u)[2] = h - d;
        }
        case 4u: {
            let s02 = a0 + a2;
            let d02 = a0 - a2;
            let s13 = a1 + a3;
            let d13 = rot(a1 - a3, sign);
            (*u)[0] = s02 + s13;
            (*u)[1] = d02 + d13;
            (*u)[2] = s02 - s13;
            (*u)[3] = d02 - d13;
        }
        case 5u: {
            let t1 = a1 + a4;
            let t2 = a2 + a3;
            let d1 = a1 - a4;
            let d2 = a2 - a3;
            let e1 = a0 + C51 * t1 + C52 * t2;
            let e2 = a0 + C52 * t1 + C51 * t2;
            let f1 = rot(S51 * d1 + S52 * d2, sign);
            let f2 = rot(S52 * d1 - S51 * d2, sign);
            (*u)[0] = a0 + t1 + t2;
            (*u)[1] = e1 + f1;
            (*u)[4] = e1 - f1;
            (*u)[2] = e2 + f2;
            (*u)[3] = e2 - f2;
        }
        default: {}
    }
}

fn src_index(q: u32, j: u32) -> u32 {
    return (q / p.inner) * p.src_os + (q % p.inner) * p.src_is + j * p.src_es;
}

fn dst_index(q: u32, j: u32) -> u32 {
    return (q / p.inner) * p.dst_os + (q % p.inner) * p.dst_is + j * p.dst_es;
}

// src_real: 0 complex, 1 real, 2 two real lines 2q (re) and 2q + 1 (im, zero past src_rows).
fn load(q: u32, j: u32) -> vec2<f32> {
    if (p.src_real == 2u) {
        var im = 0.0;
        if (2u * q + 1u < p.src_rows) { im = src[src_index(2u * q + 1u, j)]; }
        return vec2<f32>(src[src_index(2u * q, j)], im);
    }
    let a = src_index(q, j);
    if (p.src_real != 0u) { return vec2<f32>(src[a], 0.0); }
    return vec2<f32>(src[2u * a], src[2u * a + 1u]);
}

fn store(q: u32, j: u32, v: vec2<f32>) {
    let a = dst_index(q, j);
    if (p.dst_real != 0u) {
        dst[a] = v.x;
    } else {
        dst[2u * a] = v.x;
        dst[2u * a + 1u] = v.y;
    }
}

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return flat_group(wid, nwg) * WG + lid;
}

// One global Stockham pass: one invocation per butterfly (line, i).
@compute @workgroup_size(WG)
fn fft_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    let r = p.radix;
    let q_n = p.n / r;
    // The grid is rounded up to whole workgroups: skip the excess.
    if (g >= p.lines * q_n) { return; }
    let line = g / q_n;
    let i = g % q_n;
    let k = i % p.p;
    var u: array<vec2<f32>, 5>;
    for (var s = 0u; s < r; s++) {
        u[s] = cmul(load(line, i + s * q_n), twiddle(s * k, p.p * r, p.sign));
    }
    butterfly(r, &u, p.sign);
    let j = (i - k) * r + k;
    for (var t = 0u; t < r; t++) {
        store(line, j + t * p.p, p.scale * u[t]);
    }
}

// A whole transform of `rpw` lines per workgroup in workgroup memory. Lines past `lines`
// (the last workgroup's spare slots) are computed on zeros and not stored.
@compute @workgroup_size(WG)
fn fft_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let n = p.n;
    let first = (wid.y * nwg.x + wid.x) * p.rpw;
    let total = p.rpw * n;
    for (var e = lid; e < total; e += WG) {
        let line = first + e / n;
        var v = vec2<f32>(0.0, 0.0);
        if (line < p.lines) { v = load(line, e % n); }
        sm[e] = v;
    }
    workgroupBarrier();
    var cur = 0u;
    var pp = 1u;
    for (var st = 0u; st < p.stages; st++) {
        var code = p.codes0;
        if (st >= 8u) { code = p.codes1; }
        let r = (code >> (4u * (st % 8u))) & 15u;
        let q_n = n / r;
        let nxt = FFT_CAP - cur;
        for (var b = lid; b < p.rpw * q_n; b += WG) {
            let base = (b / q_n) * n;
            let i = b % q_n;
            let k = i % pp;
            var u: array<vec2<f32>, 5>;
            for (var s = 0u; s < r; s++) {
                u[s] = cmul(sm[cur + base + i + s * q_n], twiddle(s * k, pp * r, p.sign));
            }
            butterfly(r, &u, p.sign);
            let j = (i - k) * r + k;
            for (var t = 0u; t < r; t++) {
                sm[nxt + base + j + t * pp] = u[t];
            }
        }
        workgroupBarrier();
        cur = nxt;
        pp *= r;
    }
    for (var e = lid; e < total; e += WG) {
        let line = first + e / n;
        if (line < p.lines) { store(line, e % n, p.scale * sm[cur + e]); }
    }
}

// j² mod m for m < 2^31 without 64-bit integers: shift-and-add past 2^16.
fn square_mod(j: u32, m: u32) -> u32 {
    if (j < 65536u) { return (j * j) % m; }
    var r = 0u;
    let a = j % m;
    for (var bit = 31i; bit >= 0i; bit--) {
        r = (2u * r) % m;
        if (((j >> u32(bit)) & 1u) == 1u) { r = (r + a) % m; }
    }
    return r;
}

// The chirp w[j] = e^(sign·iπ·j²/n).
fn chirp(j: u32) -> vec2<f32> {
    return twiddle(square_mod(j, 2u * p.n), 2u * p.n, p.sign);
}

// dst [m]: the convolution kernel conj(w[j]) for j < n and conj(w[m - j]) for j > m - n, else 0.
@compute @workgroup_size(WG)
fn bluestein_kernel(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let j = flat(wid, nwg, lid);
    if (j >= p.m) { return; }
    var v = vec2<f32>(0.0, 0.0);
    if (j < p.n) {
        v = chirp(j);
    } else if (p.m - j < p.n) {
        v = chirp(p.m - j);
    }
    dst[2u * j] = v.x;
    dst[2u * j + 1u] = -v.y;
}

// dst [lines, m] contiguous: x[j]·w[j] for j < n, zeros after.
@compute @workgroup_size(WG)
fn bluestein_chirp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    if (g >= p.lines * p.m) { return; }
    let line = g / p.m;
    let j = g % p.m;
    var v = vec2<f32>(0.0, 0.0);
    if (j < p.n) { v = cmul(load(line, j), chirp(j)); }
    dst[2u * g] = v.x;
    dst[2u * g + 1u] = v.y;
}

// dst [lines, m] = src [lines, m] · kern [m] (the transformed kernel, shared by all lines).
@compute @workgroup_size(WG)
fn bluestein_mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    if (g >= p.lines * p.m) { return; }
    let j = g % p.m;
    let v = cmul(vec2<f32>(src[2u * g], src[2u * g + 1u]), vec2<f32>(kern[2u * j], kern[2u * j + 1u]));
    dst[2u * g] = v.x;
    dst[2u * g + 1u] = v.y;
}

// dst line q, point k < n: scale·w[k]·src[q, k] (src [lines, m] contiguous).
@compute @workgroup_size(WG)
fn bluestein_out(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    if (g >= p.lines * p.n) { return; }
    let line = g / p.n;
    let k = g % p.n;
    let a = line * p.m + k;
    let v = cmul(vec2<f32>(src[2u * a], src[2u * a + 1u]), chirp(k));
    store(line, k, p.scale * v);
}

// FNet mixing, hidden axis: src [lines/2, n = D] complex is the transform of real rows 2q + i·(2q+1);
// dst [lines = B·L, inner = H] complex is each row's spectrum at k < H = D/2 + 1:
// (Z[k] + conj Z[D - k]) / 2 for even rows, (Z[k] - conj Z[D - k]) / 2i for odd ones.
@compute @workgroup_size(WG)
fn mix_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    if (g >= p.lines * p.inner) { return; }
    let row = g / p.inner;
    let k = g % p.inner;
    let a = (row / 2u) * p.n + k;
    let b = (row / 2u) * p.n + (p.n - k) % p.n;
    let z = vec2<f32>(src[2u * a], src[2u * a + 1u]);
    let c = vec2<f32>(src[2u * b], -src[2u * b + 1u]);
    var v = 0.5 * (z + c);
    if (row % 2u == 1u) {
        let t = 0.5 * (z - c);
        v = vec2<f32>(t.y, -t.x);
    }
    dst[2u * g] = v.x;
    dst[2u * g + 1u] = v.y;
}

// FNet mixing's last step: dst [lines = B·L, n = D] real from src [B·L, inner = H] real, the
// columns k < H = D/2 + 1 transformed over the sequence axis (m = L points). The input being
// real, Re Y[t, D - k] = Re Y[(L - t) mod L, k] gives the other columns.
@compute @workgroup_size(WG)
fn mix_mirror(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    if (g >= p.lines * p.n) { return; }
    let row = g / p.n;
    var k = g % p.n;
    var src_row = row;
    if (k >= p.inner) {
        let t = row % p.m;
        src_row = row - t + (p.m - t) % p.m;
        k = p.n - k;
    }
    dst[g] = src[src_row * p.inner + k];
}

// DFT-as-matmul (src/kernels/fft.rs, mix_dft): W [n, 2n] = [C | sign·S] with
// C[r][c] = cos(2π·rc/n) and S[r][c] = sin(2π·rc/n), the angle reduced exactly from integers
// (rc mod n, then `root`), so the matrix is as accurate as the FFT's twiddles.
@compute @workgroup_size(WG)
fn dft_matrix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    let n = p.n;
    if (g >= 2u * n * n) { return; }
    let r = g / (2u * n);
    let c = g % (2u * n);
    let w = root((r * (c % n)) % n, n);
    dst[g] = select(p.sign * w.y, w.x, c < n);
}

// DFT-as-matmul: the first GEMM's rows T [b, L, 2D] = [X·C | X·S] restacked per batch as
// Z [b, 2L, D] = [X·C ; X·S], the right factor of the second GEMM (n = D, m = L, lines = b).
@compute @workgroup_size(WG)
fn dft_stack(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    let d = p.n;
    let l = p.m;
    if (g >= p.lines * 2u * l * d) { return; }
    let j = g % d;
    let row = g / d;
    let b = row / (2u * l);
    let s = (row % (2u * l)) / l;
    let i = row % l;
    dst[g] = src[(b * l + i) * 2u * d + s * d + j];
}
