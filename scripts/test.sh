#!/usr/bin/env bash
# The whole test suite: native tests on a GPU adapter (lavapipe when no GPU), the wasm32
# build and the browser smoke test on WebGPU in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# A fresh build gains nothing from incremental state, which costs gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL-0}"
echo "== disk free where the build goes: $(df -h . | awk 'NR==2 {print $4}')"
bash scripts/setup-gpu.sh
command -v cargo >/dev/null || { echo "test: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }

echo "== formatting and lints (cargo fmt --check; cargo clippy --all-targets -D warnings)"
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings

echo "== reference models (SmolLM2 GGUF, all-MiniLM-L6-v2) into the cache"
bash scripts/fetch-models.sh

# The adapter CI runs on (lavapipe) has these features; tests gated on them fail instead of
# printing SKIPPED when they are required. On an adapter without one, set the variable to the
# features it has (e.g. WEBFORMER_REQUIRE_FEATURES=subgroups bash scripts/test.sh).
export WEBFORMER_REQUIRE_FEATURES="${WEBFORMER_REQUIRE_FEATURES-shader-f16,subgroups,timestamp-query}"
echo "== adapter under test (features required: ${WEBFORMER_REQUIRE_FEATURES:-none})"
WEBFORMER_REQUIRE_GPU=1 cargo test --quiet --test graph adapter_has_the_required_features -- --nocapture 2>&1 \
    | grep -E "adapter under test|test result|panicked"

echo "== native tests (GPU and model tests may not skip: WEBFORMER_REQUIRE_GPU=1, WEBFORMER_REQUIRE_MODELS=1)"
WEBFORMER_REQUIRE_GPU=1 WEBFORMER_REQUIRE_MODELS=1 cargo test --all-targets 2>&1
WEBFORMER_REQUIRE_GPU=1 WEBFORMER_REQUIRE_MODELS=1 cargo test --doc 2>&1

# lavapipe's subgroup size follows its vector width (256 bits: 8 lanes, 512: 16); the subgroup
# GEMM and GEMV run again at 16 lanes, so a kernel that assumes CI's 8 fails here. (At 128 bits,
# 4 lanes, the subgroup GEMM is refused; tests/gemm.rs checks that rule without a GPU.)
for width in 512; do
    echo "== subgroup kernels at lavapipe vector width $width"
    if ! LP_NATIVE_VECTOR_WIDTH=$width WEBFORMER_REQUIRE_GPU=1 cargo test --quiet --test gemm --test gemv \
        >/tmp/webformer-width.txt 2>&1; then
        cat /tmp/webformer-width.txt
        echo "test: gemm/gemv failed at lavapipe vector width $width" >&2
        exit 1
    fi
    grep -E "test result" /tmp/webformer-width.txt
done
# At 128 bits (4 lanes) CPU adapters take the plain LSH hash (the broadcast one needs 8 lanes),
# the kernel GPUs run: tested here too, so both hash kernels are checked on every run.
echo "== the plain LSH hash kernel at lavapipe vector width 128"
if ! LP_NATIVE_VECTOR_WIDTH=128 WEBFORMER_REQUIRE_GPU=1 cargo test --quiet --test lsh hash \
    >/tmp/webformer-width.txt 2>&1; then
    cat /tmp/webformer-width.txt
    echo "test: the LSH hash failed at lavapipe vector width 128" >&2
    exit 1
fi
grep -E "test result" /tmp/webformer-width.txt
# Likewise the GEMV: at 4 lanes CPU adapters take the subgroup tree, not the row-per-lane kernel.
echo "== the GEMV kernels at lavapipe vector width 128"
if ! LP_NATIVE_VECTOR_WIDTH=128 WEBFORMER_REQUIRE_GPU=1 cargo test --quiet --test gemv \
    >/tmp/webformer-width.txt 2>&1; then
    cat /tmp/webformer-width.txt
    echo "test: the GEMV failed at lavapipe vector width 128" >&2
    exit 1
fi
grep -E "test result" /tmp/webformer-width.txt

echo "== CLI smoke"
cargo build --quiet
./target/debug/webformer info | tee /tmp/webformer-info.txt
grep -q "backend Vulkan" /tmp/webformer-info.txt || { echo "test: no Vulkan adapter listed" >&2; exit 1; }
./target/debug/webformer demo >/dev/null

echo "== benchmark suite, quick (every benchmark once at a small size; valid webformer-bench/1 JSON, no speed checked)"
./target/debug/webformer bench --suite all --quick --repeats 1 --json /tmp/webformer-suite.json >/dev/null
python3 - /tmp/webformer-suite.json <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["schema"] == "webformer-bench/1", doc.get("schema")
benches = {r["bench"] for r in doc["rows"]}
want = {"gemm", "gemv", "attention_prefill", "attention_decode", "lsh_attention", "dense_attention",
        "fourier_mix", "encoder_attention", "prefill", "decode"}
assert want <= benches, f"missing rows: {sorted(want - benches)}"
for r in doc["rows"]:
    assert all(isinstance(r[k], str) for k in ("bench", "case", "dtype", "variant")), r
    assert r["ms"] > 0, r
print(f"bench suite: {len(doc['rows'])} rows of {len(benches)} benchmarks")
PY

echo "== examples (examples/*.rs, run as a library user runs them)"
cargo build --quiet --examples
./target/debug/examples/matmul
./target/debug/examples/matmul 67 129 33
./target/debug/examples/custom_graph 37 96 20
./target/debug/examples/embed | tee /tmp/webformer-embed.txt
[ "$(grep -c ' | ' /tmp/webformer-embed.txt)" = 3 ] || { echo "test: the embed example printed no 3x3 similarity matrix" >&2; exit 1; }
# The generate example streams the same greedy tokens as the CLI.
prompt="The capital of France is"
want="$prompt$(./target/debug/webformer generate --prompt "$prompt" --max-tokens 8 --temperature 0 2>/dev/null)"
got="$(./target/debug/examples/generate --prompt "$prompt" --max-tokens 8 2>/dev/null)"
[ "$got" = "$want" ] || { echo "test: the generate example printed '$got', the CLI '$want'" >&2; exit 1; }
echo "generate example: $got"

echo "== fuzz targets, ${WEBFORMER_FUZZ_SECONDS:-60} s each (cargo-fuzz; the seeds and past crashes also replay in tests/robust.rs)"
bash scripts/fuzz.sh "${WEBFORMER_FUZZ_SECONDS:-60}"

echo "== wasm32 build and browser smoke test"
bash scripts/browser-test.sh

echo "== all tests passed in $(( $(date +%s) - start )) s"
