#!/usr/bin/env bash
# End-to-end browser test: build webformer for wasm32, then run web/index.html (matmul + GELU
# on WebGPU against JS references) in headless Chromium through playwright-core.
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

scripts/wasm-build.sh

say "node web/browser-test.mjs"
# exec: its exit status and closing "N passed, M failed" line are this script's.
exec node web/browser-test.mjs
