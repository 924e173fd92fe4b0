//! The Reformer model against Hugging Face's `ReformerModel` / `ReformerModelWithLMHead` on the
//! committed fixtures (scripts/make_reformer_fixtures.py): whole-model outputs for fixed ids with
//! HF's own rotations, within 1e-4 of the largest output magnitude (the bound), and at
//! a length that needs no hashing; plus the CLI's `forward` on a fixture folder.
//!
//! Why 1e-4 holds: every layer matches HF to ~1e-6 relative (tests/lsh.rs), and the final
//! LayerNorm keeps outputs O(1); the errors that remain come from f32 sums in a different order
//! (GEMM tiles, LayerNorm) and grow about linearly over the 2-3 layers. Measured: see the
//! printed errors (below 1e-5 relative on lavapipe).

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, block, gpu};
use webformer::model::files::load_reformer;
use webformer::model::Safetensors;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reformer").join(name)
}

fn ids(dir: &Path, key: &str) -> Vec<u32> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("inputs.json")).unwrap()).unwrap();
    v[key].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn expected(dir: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(dir.join("outputs.safetensors")).unwrap();
    let t = Safetensors::parse(&bytes, "outputs.safetensors").unwrap().tensor(name).unwrap();
    (t.shape, t.data.to_f32())
}

fn check(name: &str) {
    let Some(ctx) = gpu() else { return };
    let dir = fixture(name);
    let (model, rotations) = load_reformer(&dir, Some(&dir.join("rotations.safetensors"))).expect("load");
    for (ids_key, out_key) in [("ids", "output"), ("short_ids", "short_output")] {
        let ids = ids(&dir, ids_key);
        let (shape, data) = block(model.run(&ctx, &ids, &rotations)).expect("run");
        let (want_shape, want) = expected(&dir, out_key);
        assert_eq!(shape, want_shape, "{name} {ids_key}: shape");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = data.iter().zip(&want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
        eprintln!("{name} {ids_key}: max error {err:.3e}, {:.3e} of the largest output {scale:.3}", err / scale);
        assert_close(&format!("{name} {ids_key}"), &data, &want, 0.0, 1e-4 * scale);
    }
}

#[test]
fn lm_mixed_matches_hugging_face() {
    check("lm_mixed");
}

#[test]
fn bare_factorised_matches_hugging_face() {
    check("bare_factorised");
}

#[test]
fn bare_causal_onehash_matches_hugging_face() {
    check("bare_causal_onehash");
}

#[test]
fn forward_cli_prints_reformer_logits() {
    if gpu().is_none() {
        return;
    }
    let dir = fixture("lm_mixed");
    let ids = ids(&dir, "ids");
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webformer"))
        .args(["forward", "--model"])
        .arg(&dir)
        .args(["--ids", &list.join(","), "--lsh-rotations"])
        .arg(dir.join("rotations.safetensors"))
        .output()
        .expect("webformer runs");
    assert!(out.status.success(), "forward failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let (want_shape, want) = expected(&dir, "output");
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    assert_eq!(shape, want_shape);
    let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert_close("forward --lsh-rotations", &data, &want, 0.0, 1e-4 * scale);

    // Without the flag: our seeded rotations, the same output on every run.
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_webformer"))
            .args(["forward", "--model"])
            .arg(&dir)
            .args(["--ids", &list.join(",")])
            .output()
            .expect("webformer runs")
    };
    let (a, b) = (run(), run());
    assert!(a.status.success(), "forward failed: {}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout, "seeded rotations must repeat");
}
