// Activation functions shared by kernels with activation epilogues. Not a module of its own:
// it is prepended to the families that list it as a prelude (see src/kernels/mod.rs), since
// WGSL has no include.

const ACT_NONE: u32 = 0u;
const ACT_GELU_ERF: u32 = 1u;
const ACT_GELU_TANH: u32 = 2u;
const ACT_SILU: u32 = 3u;
const ACT_RELU: u32 = 4u;
const ACT_TANH: u32 = 5u;

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7): WGSL has no erf builtin.
fn erf_approx(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-x * x);
    return select(-y, y, x >= 0.0);
}

fn gelu_erf_f(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
}

fn gelu_tanh_f(x: f32) -> f32 {
    // Clamp the tanh argument: tanh(10) is 1 in f32, and some backends build tanh from exp,
    // which overflows to inf/inf = NaN for large inputs.
    let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -10.0, 10.0);
    return 0.5 * x * (1.0 + tanh(u));
}

fn silu_f(x: f32) -> f32 {
    // exp(-x) may overflow to inf for x < -88; x / inf is -0, the right limit.
    return x / (1.0 + exp(-x));
}

// tanh with its argument clamped: tanh(10) is 1 in f32, and backends that build tanh from exp
// would give inf/inf = NaN beyond.
fn tanh_f(x: f32) -> f32 {
    return tanh(clamp(x, -10.0, 10.0));
}

fn activate(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return gelu_erf_f(x); }
        case 2u: { return gelu_tanh_f(x); }
        case 3u: { return silu_f(x); }
        case 4u: { return max(x, 0.0); }
        case 5u: { return tanh_f(x); }
        default: { return x; }
    }
}
