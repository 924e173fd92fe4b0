#!/usr/bin/env bash
# The consumer test: packs web/pkg with `npm pack`, installs the tarball into an empty project
# (offline: the package has no dependencies), checks that Node resolves `webformer` by name
# through the package's `exports`, and runs app.js (imports `webformer` by name through an
# import map, as a page without a bundler does) in headless Chromium.
# Usage: bash web/consumer/run.sh WORK_DIR   (after scripts/build-web.sh and with the
# WEBFORMER_* variables of scripts/browser-test.sh set).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${1:?usage: run.sh WORK_DIR}"
APP="$WORK/app"
tarball="$(cd "$ROOT/web/pkg" && npm pack --silent --pack-destination "$WORK" | tail -1)"
echo "[consumer] packed $tarball ($(du -h "$WORK/$tarball" | cut -f1))"
rm -rf "$APP" && mkdir -p "$APP"
echo '{ "name": "webformer-consumer", "private": true, "type": "module" }' >"$APP/package.json"
(cd "$APP" && npm install --offline --no-audit --no-fund --silent "$WORK/$tarball")
resolved="$(cd "$APP" && node --input-type=module -e "console.log(import.meta.resolve('webformer'))")"
echo "[consumer] node resolves webformer to $resolved"
case "$resolved" in
    */node_modules/webformer/webformer.js) ;;
    *) echo "[consumer] webformer resolved to $resolved, not node_modules/webformer/webformer.js" >&2; exit 1 ;;
esac
cp "$ROOT/web/consumer/index.html" "$ROOT/web/consumer/app.js" "$APP/"
node "$ROOT/web/browser-test.mjs" --root "$APP" --page /index.html:testResult
