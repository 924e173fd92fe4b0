//! Shared test helpers: a GPU context (or a loud skip), seeded inputs, tolerant comparison.
#![allow(dead_code)]

pub mod harness;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webformer::Context;

/// The GPU context for tests. Without an adapter the test is skipped with a printed reason,
/// unless WEBFORMER_REQUIRE_GPU=1 (CI sets it), where a skip would hide a broken setup.
pub fn gpu() -> Option<Context> {
    // Quiets Mesa's "XDG_RUNTIME_DIR is invalid" lines, as the CLI does.
    webformer::gpu::ensure_runtime_dir();
    match pollster::block_on(Context::new()) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            if std::env::var("WEBFORMER_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("WEBFORMER_REQUIRE_GPU=1 but no GPU context: {e}");
            }
            eprintln!("SKIPPED (no GPU adapter): {e}");
            None
        }
    }
}

/// Fresh seeded random values in [lo, hi). The seed is printed so a failure can be replayed.
pub fn random(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A seed per test run: WEBFORMER_SEED if set (to replay), else the clock.
pub fn seed(label: &str) -> u64 {
    let s = std::env::var("WEBFORMER_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    eprintln!("{label}: seed {s} (replay with WEBFORMER_SEED={s})");
    s
}

/// Checks |got - want| <= atol + rtol * |want| elementwise (NaN fails), with a message naming
/// the first bad element.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs reference {}", got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= atol + rtol * w.abs();
        assert!(ok, "{what}: element {i} is {g}, reference {w} (rtol {rtol}, atol {atol})");
    }
}

pub fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// The fetched reference models, or None (with a printed SKIPPED line) when they are not
/// there, unless WEBFORMER_REQUIRE_MODELS=1 (test.sh sets it after fetching them).
pub fn models() -> Option<webformer::model::ModelPaths> {
    let p = webformer::model::ModelPaths::default_cache();
    let present =
        p.as_ref().is_some_and(|p| p.smollm2_gguf.is_file() && p.minilm_dir.join("model.safetensors").is_file());
    if present {
        return p;
    }
    let why = match &p {
        Some(p) => format!("model files not found at {} and {}", p.smollm2_gguf.display(), p.minilm_dir.display()),
        None => "neither WEBFORMER_CACHE nor HOME is set".to_string(),
    };
    if std::env::var("WEBFORMER_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("WEBFORMER_REQUIRE_MODELS=1 but {why}; run scripts/fetch-models.sh");
    }
    eprintln!("SKIPPED ({why}; run scripts/fetch-models.sh to fetch them)");
    None
}

/// Features a CI run declares the adapter must have (WEBFORMER_REQUIRE_FEATURES, comma
/// separated: `shader-f16`, `subgroups`, `timestamp-query`).
pub fn required_features() -> Vec<String> {
    std::env::var("WEBFORMER_REQUIRE_FEATURES")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// The wgpu feature behind a name of WEBFORMER_REQUIRE_FEATURES, or None for an unknown name.
pub fn feature_named(name: &str) -> Option<wgpu::Features> {
    match name {
        "shader-f16" => Some(wgpu::Features::SHADER_F16),
        "subgroups" => Some(wgpu::Features::SUBGROUP),
        "timestamp-query" => Some(wgpu::Features::TIMESTAMP_QUERY),
        _ => None,
    }
}

/// Whether a test gated on `feature` (named `name`, as in WEBFORMER_REQUIRE_FEATURES) may run:
/// true when the adapter has it. Without it the test prints SKIPPED and should return, unless
/// the feature is required, where a skip would hide a broken adapter setup: then it panics.
pub fn require_feature(ctx: &Context, feature: wgpu::Features, name: &str) -> bool {
    if ctx.has(feature) {
        return true;
    }
    let adapter = ctx.adapter().one_line();
    if required_features().iter().any(|f| f == name) {
        panic!("WEBFORMER_REQUIRE_FEATURES names {name}, but the adapter lacks it: {adapter}");
    }
    eprintln!("SKIPPED (the adapter has no {name}): {adapter}");
    false
}

/// Checks |got - want| <= atol + rtol * |want| elementwise, as `assert_close` does (NaN fails),
/// and returns the largest absolute and relative differences seen, for tests that print the
/// measured error their tolerance was derived from.
pub fn assert_close_measured(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) -> (f32, f32) {
    assert_close(what, got, want, rtol, atol);
    let mut worst = (0f32, 0f32);
    for (g, w) in got.iter().zip(want) {
        let d = (g - w).abs();
        worst.0 = worst.0.max(d);
        if *w != 0.0 {
            worst.1 = worst.1.max(d / w.abs());
        }
    }
    worst
}

/// The GEMV reduction `imp` must give on this device for a `dtype` weight with rows of `k`,
/// stated from the adapter's facts: `Auto` takes the row-per-lane kernel on CPU adapters with
/// subgroups of 8+ lanes for Q8_0, Q4_1 and f32 rows of whole 32-blocks, else the subgroup tree
/// where the device has SUBGROUP; `GemvSubgroup` / `GemvShared` force their tree.
pub fn expected_gemv_reduce(
    ctx: &Context,
    imp: webformer::MatmulImpl,
    dtype: webformer::DType,
    k: usize,
) -> webformer::kernels::gemv::Reduce {
    use webformer::kernels::gemv::Reduce;
    use webformer::{DType, MatmulImpl};
    let subgroups = ctx.has(wgpu::Features::SUBGROUP);
    let cpu_lanes = ctx.adapter().device_type == "Cpu" && subgroups && ctx.adapter().subgroup_size[0] >= 8;
    let lanes_dtype = matches!(dtype, DType::Q8_0 | DType::Q4_1) || (dtype == DType::F32 && k.is_multiple_of(32));
    match imp {
        MatmulImpl::Auto if cpu_lanes && lanes_dtype => Reduce::Lanes,
        MatmulImpl::Auto | MatmulImpl::GemvSubgroup if subgroups => Reduce::Subgroup,
        _ => Reduce::Shared,
    }
}

/// The GEMV kernels a test walks: `Auto`, the portable tree and, where the device has
/// SUBGROUP, the subgroup tree (which `Auto` no longer picks on CPU adapters).
pub fn gemv_imps(ctx: &Context) -> Vec<webformer::MatmulImpl> {
    use webformer::MatmulImpl;
    let mut v = vec![MatmulImpl::Auto, MatmulImpl::GemvShared];
    if ctx.has(wgpu::Features::SUBGROUP) {
        v.push(MatmulImpl::GemvSubgroup);
    }
    v
}
