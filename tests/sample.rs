//! Argmax and GPU sampling against their references.
//!
//! argmax: exact equality with torch semantics (ties -> lowest index, NaN is the maximum, -0 ==
//! +0), rows 1 to 49157 long, rows beyond 65535 workgroups.
//!
//! sample: the shader searches thresholds on f32 sums, the reference on f64 sums, so they may
//! only differ where a sum lies within rounding of a decision boundary. `cpu::sample::sample_row`
//! reports how far each decision was from its boundary (relative to the mass involved); where
//! that margin exceeds MARGIN (1e-4, ~100x the f32 sum error at these sizes) the tokens must be
//! equal, and at least 90% of the draws must be checked that way. Top-k uses exact counts, so
//! membership in the k largest is checked for every draw.
//!
//! Against definitions outside the sampler: frequencies at temperatures 0.5, 1 and 2 follow
//! softmax(x / T) computed here in f64, and on rows from transformers' TemperatureLogitsWarper,
//! TopKLogitsWarper and TopPLogitsWarper (tests/fixtures/sampling_warpers.json) the reference's
//! candidate set is transformers' kept set and the GPU's draws follow transformers'
//! renormalised probabilities; frequency bounds are a 5-sigma band per bucket or Pearson's
//! chi-square at a false-failure rate of 1e-6 (see assert_frequencies, assert_chi_square).

mod common;

use common::{block, gpu, random, seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webformer::{cpu, Context, DType, Error, GpuExecutor, Graph, NodeId, SampleOptions};

const MARGIN: f64 = 1e-4;
const TEMP_SLOT: u32 = 6;
const SEED_SLOT: u32 = 7;

fn argmax_gpu(ctx: &Context, x: &[f32], rows: usize, n: usize) -> Vec<u32> {
    let mut g = Graph::new();
    let xi = g.input("x", &[rows, n], DType::F32).unwrap();
    let y = g.argmax(xi).unwrap();
    assert_eq!(g.node(y).shape, vec![rows]);
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("x", x).unwrap();
    exe.run().unwrap();
    match block(exe.read(y)).unwrap() {
        webformer::HostData::U32(v) => v,
        other => panic!("argmax returned {:?}", other.dtype()),
    }
}

/// Random logits; with `coarse`, rounded to a few levels so ties are common.
fn logits(seed: u64, n: usize, coarse: bool) -> Vec<f32> {
    random(seed, n, -8.0, 8.0).into_iter().map(|v| if coarse { (v / 2.0).round() } else { v }).collect()
}

#[test]
fn argmax_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("argmax");
    for (k, &(rows, n)) in
        [(1, 1), (1, 7), (3, 255), (2, 256), (5, 257), (4, 4099), (1, 49152), (3, 49157)].iter().enumerate()
    {
        for coarse in [false, true] {
            let x = logits(s + k as u64, rows * n, coarse);
            let got = argmax_gpu(&ctx, &x, rows, n);
            assert_eq!(got, cpu::sample::argmax(&x, n), "argmax [{rows}, {n}] coarse {coarse}");
        }
    }
}

#[test]
fn argmax_special_values() {
    let Some(ctx) = gpu() else { return };
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let rows: Vec<Vec<f32>> = vec![
        vec![1.0, nan, 3.0, nan],     // NaN is the maximum, first one wins
        vec![-0.0, 0.0, -1.0],        // -0 == +0: lowest index
        vec![-inf, -inf, -inf],       // all -inf: index 0
        vec![2.0, inf, inf, 1.0],     // +inf, first
        vec![-3.0, -2.0, -2.0, -5.0], // negative tie
    ];
    for r in rows {
        let got = argmax_gpu(&ctx, &r, 1, r.len());
        assert_eq!(got, cpu::sample::argmax(&r, r.len()), "argmax of {r:?}");
    }
    assert_eq!(cpu::sample::argmax(&[1.0, nan, 3.0, nan], 4), vec![1]);
    assert_eq!(cpu::sample::argmax(&[-0.0, 0.0, -1.0], 3), vec![0]);
}

#[test]
fn argmax_beyond_65535_rows() {
    let Some(ctx) = gpu() else { return };
    let (rows, n) = (65537, 3);
    let x = logits(seed("argmax wrapped grid"), rows * n, true);
    assert_eq!(argmax_gpu(&ctx, &x, rows, n), cpu::sample::argmax(&x, n));
}

/// A sampler graph over [rows, n] logits, ready to run.
struct Sampler {
    exe: GpuExecutor,
    y: NodeId,
}

impl Sampler {
    fn new(ctx: &Context, rows: usize, n: usize, top_k: u32, top_p: f32) -> Self {
        let mut g = Graph::new();
        let x = g.input("logits", &[rows, n], DType::F32).unwrap();
        let y = g.sample(x, SampleOptions { top_k, top_p, temperature_slot: TEMP_SLOT, seed_slot: SEED_SLOT }).unwrap();
        g.output(y).unwrap();
        Self { exe: GpuExecutor::new(ctx, &g).unwrap(), y }
    }

    fn run(&mut self, x: &[f32], temperature: f32, seed: u32) -> Vec<u32> {
        self.exe.poison_outputs();
        self.exe.set_input("logits", x).unwrap();
        self.exe.set_runtime_f32(TEMP_SLOT, temperature).unwrap();
        self.exe.set_runtime_u32(SEED_SLOT, seed).unwrap();
        self.exe.run().unwrap();
        match block(self.exe.read(self.y)).unwrap() {
            webformer::HostData::U32(v) => v,
            other => panic!("sample returned {:?}", other.dtype()),
        }
    }
}

#[test]
fn temperature_zero_and_top_k_one_are_argmax() {
    let Some(ctx) = gpu() else { return };
    let s = seed("greedy");
    let (rows, n) = (7, 1031);
    for coarse in [false, true] {
        let x = logits(s, rows * n, coarse);
        let want = cpu::sample::argmax(&x, n);
        let mut plain = Sampler::new(&ctx, rows, n, 0, 1.0);
        let mut k1 = Sampler::new(&ctx, rows, n, 1, 0.9);
        for seed in 0..3u32 {
            assert_eq!(plain.run(&x, 0.0, seed), want, "temperature 0 (coarse {coarse})");
            assert_eq!(plain.run(&x, 1e-30, seed), want, "temperature 1e-30 (coarse {coarse})");
            assert_eq!(plain.run(&x, -1.0, seed), want, "temperature -1 (coarse {coarse})");
            assert_eq!(k1.run(&x, 1.0, seed), want, "top_k 1 (coarse {coarse})");
        }
    }
}

#[test]
fn fixed_seed_repeats_and_seeds_vary() {
    let Some(ctx) = gpu() else { return };
    let s = seed("repeat");
    let (rows, n) = (4, 4099);
    // Flat logits: many tokens are plausible, so different seeds must give different tokens.
    let x: Vec<f32> = random(s, rows * n, -0.5, 0.5);
    let mut smp = Sampler::new(&ctx, rows, n, 50, 0.95);
    let first = smp.run(&x, 1.0, 12345);
    for _ in 0..3 {
        assert_eq!(smp.run(&x, 1.0, 12345), first, "same seed, same logits, different token");
    }
    let mut seen = std::collections::HashSet::new();
    for seed in 0..20u32 {
        seen.insert(smp.run(&x, 1.0, seed)[0]);
    }
    assert!(seen.len() >= 5, "20 seeds over 50 near-equal candidates gave only {} distinct tokens", seen.len());
}

/// Runs many configurations over random rows; checks every GPU token against the reference
/// where the reference's margin allows, and always checks membership in the top-k set.
#[allow(clippy::too_many_arguments)]
fn check_against_reference(
    ctx: &Context,
    rows: usize,
    n: usize,
    top_k: u32,
    top_p: f32,
    temperature: f32,
    seeds: &[u32],
    data_seed: u64,
) -> (usize, usize) {
    let x = logits(data_seed, rows * n, data_seed.is_multiple_of(2));
    let mut smp = Sampler::new(ctx, rows, n, top_k, top_p);
    let (mut compared, mut total) = (0, 0);
    for &seed in seeds {
        let got = smp.run(&x, temperature, seed);
        for (r, row) in x.chunks(n).enumerate() {
            let d = cpu::sample::sample_row(row, top_k, top_p, temperature, seed, r as u32);
            let tok = got[r] as usize;
            let what = format!("sample [{rows}, {n}] k {top_k} p {top_p} T {temperature} seed {seed} row {r}");
            assert!(tok < n, "{what}: token {tok} out of range");
            if top_k > 1 && (top_k as usize) < n {
                let mut sorted = row.to_vec();
                sorted.sort_by(|a, b| b.total_cmp(a));
                assert!(
                    row[tok] >= sorted[top_k as usize - 1],
                    "{what}: token {tok} ({}) is not among the {top_k} largest",
                    row[tok]
                );
            }
            total += 1;
            if d.margin > MARGIN {
                compared += 1;
                assert_eq!(got[r], d.token, "{what}: GPU drew {tok}, reference {} (margin {:e})", d.token, d.margin);
            }
        }
    }
    (compared, total)
}

#[test]
fn sample_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let s = seed("sample");
    let seeds: Vec<u32> = (0..4).map(|k| (s as u32).wrapping_add(k * 7919)).collect();
    let (mut compared, mut total) = (0, 0);
    let configs: &[(usize, usize, u32, f32, f32)] = &[
        (3, 1, 0, 1.0, 1.0),
        (5, 2, 0, 1.0, 0.7),
        (4, 17, 0, 1.0, 1.0),
        (6, 255, 5, 1.0, 1.5),
        (3, 256, 0, 0.9, 1.0),
        (5, 257, 40, 0.95, 0.8),
        (2, 1031, 40, 1.0, 1.0),
        (2, 4099, 0, 0.5, 2.0),
        (2, 4099, 300, 0.8, 1.0),
        (1, 49152, 50, 0.95, 0.7),
    ];
    for (k, &(rows, n, top_k, top_p, t)) in configs.iter().enumerate() {
        let (c, a) = check_against_reference(&ctx, rows, n, top_k, top_p, t, &seeds, s + k as u64);
        compared += c;
        total += a;
    }
    eprintln!("sample: {compared} of {total} draws compared token for token");
    assert!(compared * 10 >= total * 9, "only {compared} of {total} draws were far enough from a boundary to compare");
}

#[test]
fn top_k_never_leaves_the_k_largest() {
    let Some(ctx) = gpu() else { return };
    let s = seed("top-k");
    // 16 rows x 12 seeds = 192 draws per k, at a high temperature so the tail is likely.
    let seeds: Vec<u32> = (0..12u32).map(|k| (s as u32) ^ k.wrapping_mul(2654435761)).collect();
    for (j, k) in [2u32, 3, 10, 100].into_iter().enumerate() {
        check_against_reference(&ctx, 16, 301, k, 1.0, 4.0, &seeds, s + j as u64);
    }
}

#[test]
fn top_p_never_leaves_the_nucleus() {
    let Some(ctx) = gpu() else { return };
    let s = seed("top-p");
    let mut rng = StdRng::seed_from_u64(s);
    let (rows, n) = (24, 211);
    let (mut checked, mut total) = (0, 0);
    for trial in 0..6 {
        let top_p: f32 = rng.random_range(0.05..0.99);
        let x = logits(s + trial, rows * n, trial % 2 == 0);
        let mut smp = Sampler::new(&ctx, rows, n, 0, top_p);
        for seed in 0..5u32 {
            let seed = seed.wrapping_mul(0x9e3779b9).wrapping_add(s as u32);
            let got = smp.run(&x, 1.0, seed);
            for (r, row) in x.chunks(n).enumerate() {
                let d = cpu::sample::sample_row(row, 0, top_p, 1.0, seed, r as u32);
                total += 1;
                // The nucleus is the smallest set of largest logits (ties together) whose
                // probability reaches top_p; skip rows whose mass sits on a boundary.
                if d.margin_top_p > MARGIN {
                    checked += 1;
                    assert!(
                        d.candidates[got[r] as usize],
                        "top_p {top_p} seed {seed} row {r}: token {} lies outside the nucleus",
                        got[r]
                    );
                }
            }
        }
    }
    assert!(checked * 10 >= total * 9, "only {checked} of {total} rows were clear of a top-p boundary");
}

/// |count - N·p| <= 5·sqrt(N·p·(1-p)) + 1 for every bucket: a 5-sigma band (normal
/// approximation; two-sided tail 5.7e-7 per bucket), plus 1 for the discreteness of counts.
/// The draws are deterministic for a given seed, so a failure replays with WEBFORMER_SEED.
fn assert_frequencies(what: &str, counts: &[usize], probs: &[f64], draws: usize) {
    for (i, (&c, &p)) in counts.iter().zip(probs).enumerate() {
        let mean = draws as f64 * p;
        let band = 5.0 * (mean * (1.0 - p)).sqrt() + 1.0;
        assert!(
            (c as f64 - mean).abs() <= band,
            "{what}: token {i} drawn {c} times in {draws}, expected {mean:.1} +- {band:.1}"
        );
    }
}

#[test]
fn frequencies_match_softmax() {
    let Some(ctx) = gpu() else { return };
    let s = seed("frequencies");
    let n = 10;
    let x = random(s, n, -2.0, 2.0);
    let m = x.iter().cloned().fold(f32::MIN, f32::max) as f64;
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
    let z: f64 = e.iter().sum();
    let probs: Vec<f64> = e.iter().map(|v| v / z).collect();

    // 2000 steps of one row, the seed changed every step as a decoder does.
    let draws = 2000;
    let mut smp = Sampler::new(&ctx, 1, n, 0, 1.0);
    let mut counts = vec![0; n];
    for k in 0..draws as u32 {
        counts[smp.run(&x, 1.0, (s as u32).wrapping_add(k))[0] as usize] += 1;
    }
    assert_frequencies("temperature 1, 2000 seeds", &counts, &probs, draws);

    // 1000 rows of the same logits in one run (each row hashes its own index), with top-k 4
    // and top-p 0.8: frequencies follow the renormalised probabilities of the kept set. The
    // logits are redrawn (from the same seed stream) until top-p is clear of its boundary and
    // keeps fewer than the 4 top-k candidates, so the top-p branch is what is being tested.
    let (k, p) = (4, 0.8);
    let (x, d) = (0..64)
        .map(|j| random(s + 1 + j, n, -2.0, 2.0))
        .map(|x| {
            let d = cpu::sample::sample_row(&x, k, p, 1.0, 0, 0);
            (x, d)
        })
        .find(|(_, d)| d.margin_top_p > MARGIN && d.candidates.iter().filter(|&&c| c).count() < k as usize)
        .expect("64 draws of logits without one where top-p cuts into the top 4");
    assert!(!d.greedy);
    let probs = softmax(&x, 1.0);
    let rows = 1000;
    let tiled: Vec<f32> = (0..rows).flat_map(|_| x.iter().copied()).collect();
    let mut smp = Sampler::new(&ctx, rows, n, k, p);
    let got = smp.run(&tiled, 1.0, s as u32);
    let kept: f64 = (0..n).filter(|&i| d.candidates[i]).map(|i| probs[i]).sum();
    let want: Vec<f64> = (0..n).map(|i| if d.candidates[i] { probs[i] / kept } else { 0.0 }).collect();
    let mut counts = vec![0; n];
    for t in got {
        counts[t as usize] += 1;
    }
    assert_frequencies("top-k 4, top-p 0.8, 1000 rows", &counts, &want, rows);
}

/// softmax(x / t) in f64: the exact probabilities, computed independently of the sampler.
fn softmax(x: &[f32], t: f64) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::MIN, |a, v| a.max(v as f64));
    let e: Vec<f64> = x.iter().map(|&v| ((v as f64 - m) / t).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

/// Pearson's chi-square test of `counts` against `probs` over `draws` draws. Buckets expected
/// to get fewer than 5 draws are pooled into one (the chi-square approximation needs about 5
/// per bucket); a draw from a zero-probability bucket fails outright. The bound is the
/// chi-square quantile at a false-failure rate of 1e-6 (Wilson-Hilferty: dof·(1 - 2/(9 dof) +
/// z·sqrt(2/(9 dof)))^3 with z = 4.753), so a correct sampler fails about once in a million runs
/// while a sampler off by a few percent in one bucket's probability fails at these draw counts.
fn assert_chi_square(what: &str, counts: &[usize], probs: &[f64], draws: usize) {
    let mut buckets: Vec<(f64, f64)> = Vec::new(); // (observed, expected)
    let mut pooled = (0.0, 0.0);
    for (i, (&c, &p)) in counts.iter().zip(probs).enumerate() {
        assert!(p > 0.0 || c == 0, "{what}: token {i} has probability 0 but was drawn {c} times");
        let e = p * draws as f64;
        if e >= 5.0 {
            buckets.push((c as f64, e));
        } else {
            pooled = (pooled.0 + c as f64, pooled.1 + e);
        }
    }
    if pooled.1 > 0.0 {
        buckets.push(pooled);
    }
    if buckets.len() < 2 {
        // One candidate: every draw must be it, which the zero-probability check just proved.
        return;
    }
    let chi2: f64 = buckets.iter().map(|(o, e)| (o - e).powi(2) / e).sum();
    let dof = (buckets.len() - 1) as f64;
    let z = 4.753;
    let bound = dof * (1.0 - 2.0 / (9.0 * dof) + z * (2.0 / (9.0 * dof)).sqrt()).powi(3);
    eprintln!("{what}: chi-square {chi2:.1} over {} buckets (bound {bound:.1})", buckets.len());
    assert!(
        chi2 <= bound,
        "{what}: chi-square {chi2:.1} > {bound:.1} with {dof} degrees of freedom: {counts:?} vs {probs:?}"
    );
}

/// Draws one token from each of `rows` copies of `x` in one run and counts them.
fn tiled_counts(
    ctx: &Context,
    x: &[f32],
    rows: usize,
    top_k: u32,
    top_p: f32,
    temperature: f32,
    seed: u32,
) -> Vec<usize> {
    let n = x.len();
    let tiled: Vec<f32> = (0..rows).flat_map(|_| x.iter().copied()).collect();
    let mut smp = Sampler::new(ctx, rows, n, top_k, top_p);
    let mut counts = vec![0; n];
    for t in smp.run(&tiled, temperature, seed) {
        assert!((t as usize) < n, "token {t} out of range {n}");
        counts[t as usize] += 1;
    }
    counts
}

#[test]
fn frequencies_follow_softmax_at_temperatures_half_and_two() {
    // Temperature scales the logits before the softmax: at 0.5 the distribution sharpens, at 2
    // it flattens. 4000 draws against softmax(x / T) computed here in f64.
    let Some(ctx) = gpu() else { return };
    let s = seed("temperature frequencies");
    let n = 10;
    let x = random(s, n, -2.0, 2.0);
    for t in [0.5f32, 2.0] {
        let counts = tiled_counts(&ctx, &x, 4000, 0, 1.0, t, (s as u32) ^ t.to_bits());
        let probs = softmax(&x, t as f64);
        assert!(probs.iter().filter(|&&p| p * 4000.0 >= 5.0).count() >= 2, "temperature {t}: too few buckets");
        assert_chi_square(&format!("temperature {t}"), &counts, &probs, 4000);
    }
}

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn candidate_sets_match_transformers_warpers() {
    // tests/fixtures/sampling_warpers.json: rows through transformers' TemperatureLogitsWarper,
    // TopKLogitsWarper and TopPLogitsWarper (scripts/make_fixtures.py). The reference's
    // candidate set must equal transformers' kept set exactly (the fixture's rows keep top-p's
    // mass at least 1e-3 from its threshold); the GPU's draws must all fall in it and follow
    // transformers' renormalised probabilities (chi-square, see assert_chi_square).
    let Some(ctx) = gpu() else { return };
    let fx = fixture("sampling_warpers.json");
    let s = seed("warpers");
    let (mut cut_by_top_p, mut cut_by_top_k) = (0, 0);
    for (c, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let x: Vec<f32> = case["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let n = x.len();
        let t = case["temperature"].as_f64().unwrap() as f32;
        let k = case["top_k"].as_u64().unwrap() as u32;
        let p = case["top_p"].as_f64().unwrap() as f32;
        let kept: Vec<usize> = case["kept"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let probs_kept: Vec<f64> = case["probs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let what = format!("case {c}: n {n}, T {t}, top-k {k}, top-p {p}");
        let d = cpu::sample::sample_row(&x, k, p, t, 0, 0);
        let ours: Vec<usize> = (0..n).filter(|&i| d.candidates[i]).collect();
        assert_eq!(ours, kept, "{what}: reference candidates vs transformers'");
        let by_k = case["kept_by_top_k"].as_u64().unwrap() as usize;
        cut_by_top_k += usize::from(by_k < n);
        cut_by_top_p += usize::from(kept.len() < by_k);
        let mut probs = vec![0f64; n];
        for (&i, &q) in kept.iter().zip(&probs_kept) {
            probs[i] = q;
        }
        // 2000 draws: every kept token's expected count is >= 17 (smallest probability 0.0086).
        let rows = 2000;
        let counts = tiled_counts(&ctx, &x, rows, k, p, t, (s as u32).wrapping_add(c as u32 * 7919));
        assert_chi_square(&what, &counts, &probs, rows);
    }
    // The fixture exercises both filters (else a sampler ignoring one would pass).
    assert!(cut_by_top_p >= 5 && cut_by_top_k >= 3, "top-p cut {cut_by_top_p} cases, top-k {cut_by_top_k}");
}

#[test]
fn sample_ignores_nan_and_handles_infinities() {
    let Some(ctx) = gpu() else { return };
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let cases: Vec<(Vec<f32>, &str)> = vec![
        (vec![nan, 1.0, nan, 1.0], "NaN never drawn"),
        (vec![-inf, -inf, 0.0, -inf], "only one finite logit"),
        (vec![-inf, -inf, -inf], "all -inf: greedy index 0"),
        (vec![1.0, inf, 2.0, inf], "+inf: greedy, first"),
        (vec![nan, nan], "all NaN: index 0"),
    ];
    for (x, what) in cases {
        let mut smp = Sampler::new(&ctx, 1, x.len(), 0, 1.0);
        for seed in 0..8u32 {
            let got = smp.run(&x, 1.0, seed)[0];
            let want = cpu::sample::sample_row(&x, 0, 1.0, 1.0, seed, 0).token;
            assert_eq!(got, want, "{what}: {x:?} seed {seed}");
            assert!(!x[got as usize].is_nan() || x.iter().all(|v| v.is_nan()), "{what}: drew a NaN");
        }
    }
}

#[test]
fn sample_beyond_65535_rows() {
    // 65537 rows: the last two are in the wrapped part of the grid. To keep lavapipe's time
    // down, the first 65535 rows hold a +inf logit (the greedy path: one reduction), and the
    // last two rows are ordinary logits that go through top-k, top-p and the draw.
    let Some(ctx) = gpu() else { return };
    let s = seed("sample wrapped grid");
    let (rows, n) = (65537, 5);
    let mut x = logits(s, rows * n, false);
    for r in 0..65535 {
        x[r * n + r % n] = f32::INFINITY;
    }
    let mut smp = Sampler::new(&ctx, rows, n, 3, 0.9);
    let seed = s as u32;
    let got = smp.run(&x, 1.0, seed);
    for (r, row) in x.chunks(n).enumerate() {
        let d = cpu::sample::sample_row(row, 3, 0.9, 1.0, seed, r as u32);
        assert_eq!(d.greedy, r < 65535);
        if d.margin > MARGIN {
            assert_eq!(got[r], d.token, "row {r} seed {seed}: GPU drew {}, reference {}", got[r], d.token);
        }
    }
}

#[test]
fn sample_rejects_bad_options() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 5], DType::F32).unwrap();
    let o = SampleOptions { top_k: 0, top_p: 1.0, temperature_slot: 0, seed_slot: 1 };
    assert!(matches!(g.sample(x, o), Err(Error::Shape { .. })));
    let x = g.input("x2", &[5], DType::F32).unwrap();
    let e = g.sample(x, SampleOptions { top_p: 0.0, ..o }).unwrap_err();
    assert!(e.to_string().contains("top_p"), "{e}");
    assert!(matches!(g.sample(x, SampleOptions { seed_slot: 16, ..o }), Err(Error::RuntimeSlot { .. })));
    let y = g.sample(x, o).unwrap();
    assert_eq!((g.node(y).shape.clone(), g.node(y).dtype), (vec![1], DType::U32));
}

#[test]
fn decode_step_graph_agrees_with_cpu_executor() {
    // A toy decoder step: rms_norm -> q projection -> rope (position from slot 2) -> output
    // projection -> argmax and sample, replayed at several positions. Node by node, the GPU
    // plan must match the CPU executor (rtol 1e-4: two matmuls of k = 64 and a norm).
    let Some(ctx) = gpu() else { return };
    let s = seed("decode step");
    let (hidden, heads, head_dim, vocab) = (64, 4, 16, 50);
    let mut g = Graph::new();
    let x = g.input("x", &[1, hidden], DType::F32).unwrap();
    let wn = g.weight("norm", &[hidden], random(s, hidden, 0.5, 1.5)).unwrap();
    let wq = g.weight("wq", &[hidden, hidden], random(s + 1, hidden * hidden, -0.2, 0.2)).unwrap();
    let wo = g.weight("wo", &[vocab, hidden], random(s + 2, vocab * hidden, -0.5, 0.5)).unwrap();
    let h = g.rms_norm(x, wn, 1e-5).unwrap();
    let q = g.matmul_t(h, wq).unwrap();
    let q = g.reshape(q, &[1, heads, head_dim]).unwrap();
    let q = g.rope(q, webformer::RopeMode::Adjacent, 100000.0, 2).unwrap();
    let q = g.reshape(q, &[1, hidden]).unwrap();
    let logits = g.matmul_t(q, wo).unwrap();
    let greedy = g.argmax(logits).unwrap();
    let token = g
        .sample(logits, SampleOptions { top_k: 10, top_p: 0.9, temperature_slot: TEMP_SLOT, seed_slot: SEED_SLOT })
        .unwrap();
    g.output(logits).unwrap();
    g.output(greedy).unwrap();
    g.output(token).unwrap();
    let input = webformer::HostData::F32(random(s + 3, hidden, -1.0, 1.0));
    for pos in [0u32, 7, 4095] {
        // Node by node against the CPU executor, at temperature 0 (sample == argmax).
        let runtime = [(2, pos), (TEMP_SLOT, 0f32.to_bits()), (SEED_SLOT, 9)];
        let bad = block(webformer::exec::compare(&ctx, &g, &[("x", input.clone())], &runtime, 1e-4, 1e-5)).unwrap();
        assert!(bad.is_none(), "position {pos}: {bad:?}");
    }
    // At temperature 1 the drawn token is the reference's draw from the GPU's own logits.
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input_host("x", &input).unwrap();
    exe.set_runtime_f32(TEMP_SLOT, 1.0).unwrap();
    for step in 0..16u32 {
        exe.set_runtime_u32(2, step).unwrap();
        exe.set_runtime_u32(SEED_SLOT, (s as u32).wrapping_add(step)).unwrap();
        exe.run().unwrap();
        let l = block(exe.read(logits)).unwrap().to_f32();
        let t = block(exe.read(token)).unwrap().to_f32()[0] as u32;
        let d = cpu::sample::sample_row(&l, 10, 0.9, 1.0, (s as u32).wrapping_add(step), 0);
        if d.margin > MARGIN {
            assert_eq!(t, d.token, "step {step}");
        }
        if d.margin_top_p > MARGIN {
            assert!(d.candidates[t as usize], "step {step}: token {t} outside top-k/top-p");
        }
    }
}
