#!/usr/bin/env bash
# The main job: build the release binary, show the GPU adapters, run the demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-gpu.sh
command -v cargo >/dev/null || { echo "run: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
cargo build --release --quiet
./target/release/webformer info
./target/release/webformer demo
