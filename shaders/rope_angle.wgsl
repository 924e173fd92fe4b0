// Rotary angles in exact integer arithmetic, shared by rope.wgsl and rope_kv.wgsl.
//
// Precision. Done naively in f32 (inv_freq = pow(theta, -2i/d), a = pos * inv_freq,
// sin(a), cos(a)) the angle is only as good as the f32 product: near 8192 half an ulp is
// 4.9e-4 rad (measured: up to 4.9e-4 rad over positions 0..8192 even with a correctly
// rounded pow), a GPU pow adds a few ulps of inv_freq on top, and WGSL promises sin/cos
// accuracy only on [-pi, pi]. Here the angle is built in exact integer arithmetic instead:
//   f_i = theta^(-2i/d) / (2 pi), in revolutions per position, is a 64-bit binary fraction,
//         computed as c * r^i by square-and-multiply on 64-bit fractions (u32 pairs), with
//         r = theta^(-2/d) and c = 1 / (2 pi) rounded to 64 bits on the host (from f64);
//   pos * f_i mod 1 is an exact wrapping u32 product: the fractional turn, to 2^-32;
//   read as a signed fraction it is the angle reduced to [-pi, pi), converted to f32 once.
// So the angle carries ~3e-7 rad of error (one f32 rounding of a value <= pi) at any position
// below 2^32, and sin/cos only ever see [-pi, pi). Measured against f64 on lavapipe: see the
// tolerance comment in tests/rope.rs.

// 2 pi / 2^32: converts a signed 32-bit fraction of a turn to radians.
const RAD_PER_UNIT: f32 = 1.4629180792671596e-9;

// The full 64-bit product of two u32 as (lo, hi), from 16-bit halves (WGSL has no 64-bit
// integers). `mid` < 3 * 2^16 cannot overflow, nor can `hi` (a * b < 2^64).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

// floor(a * b) for 64-bit fractions a, b in [0, 1): the top 64 bits of the 128-bit product.
// With a = A1 2^32 + A0 (and b alike), that is A1 B1 + floor((A1 B0 + A0 B1 + hi(A0 B0)) / 2^32);
// the middle sum can reach 2^65, so its carries are counted explicitly.
fn fx_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let m1 = mul_wide(a.y, b.x);
    let m2 = mul_wide(a.x, b.y);
    let t = mul_wide(a.x, b.x).y;
    let s0 = m1.x + m2.x;
    let s1 = s0 + t;
    let c_lo = select(0u, 1u, s0 < m1.x) + select(0u, 1u, s1 < s0);
    let h0 = m1.y + m2.y;
    let h1 = h0 + c_lo;
    let c_hi = select(0u, 1u, h0 < m1.y) + select(0u, 1u, h1 < h0);
    let top = mul_wide(a.y, b.y);
    let lo = top.x + h1;
    return vec2<u32>(lo, top.y + c_hi + select(0u, 1u, lo < top.x));
}

// The angle of pair i at position pos, in [-pi, pi), for r = theta^(-2/d) and c = 1 / (2 pi)
// as 64-bit fractions (lo, hi).
fn turn_angle(i: u32, pos: u32, r: vec2<u32>, c: vec2<u32>) -> f32 {
    // f = c * r^i by square-and-multiply: at most 2 * 16 products for i < 2^16, each
    // truncated by < 2^-64.
    var f = c;
    var base = r;
    var e = i;
    loop {
        if (e == 0u) { break; }
        if ((e & 1u) == 1u) { f = fx_mul(f, base); }
        e = e >> 1u;
        if (e != 0u) { base = fx_mul(base, base); }
    }
    // Fractional turn of pos * f, to 2^-32: the integer turns wrap away.
    let turn = pos * f.y + mul_wide(pos, f.x).y;
    return f32(bitcast<i32>(turn)) * RAD_PER_UNIT;
}

// (u, v) turned by angle a: (u cos a - v sin a, u sin a + v cos a).
fn rotate_pair(u: f32, v: f32, a: f32) -> vec2<f32> {
    let c = cos(a);
    let s = sin(a);
    return vec2<f32>(u * c - v * s, u * s + v * c);
}
