#!/usr/bin/env bash
# Builds the npm package `webformer` into web/pkg/: the wasm32 library, its wasm-bindgen glue
# (webformer_wasm.js + webformer_wasm_bg.wasm) and the hand-written API from web/package/
# (webformer.js, webformer.d.ts, package.json, README.md). `npm pack web/pkg` makes the tarball.
#
# Why this way (see NOTES.md section 4): no rustup wasm32 std can be downloaded here, so Debian's
# rustc-web builds std from source (-Zbuild-std). /usr/bin goes first in PATH for this build
# only. A target dir of its own (${CARGO_TARGET_DIR:-target}/wasm) keeps it off the native
# build's lock and artefacts.
# wasm-bindgen-cli must be exactly the wasm-bindgen in Cargo.lock; it is installed once into
# a cache folder ($WEBFORMER_CACHE, default ~/.cache/webformer) and reused.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${WEBFORMER_CACHE:-$HOME/.cache/webformer}"
OUT_DIR="$ROOT/web/pkg"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/wasm"

say() { printf '[build-web] %s\n' "$*"; }
sudo_if() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Toolchain: Debian's rustc-web with std sources, LLVM tools and lld for rust-lld.
need=()
for p in rustc-web cargo-web rust-web-src rust-web-llvm lld-22; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    say "installing ${need[*]}"
    sudo_if apt-get update
    sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

# 2. The library for wasm32.
say "cargo build --release --lib -Zbuild-std=std,panic_abort --target wasm32-unknown-unknown (target dir $TARGET_DIR)"
start=$(date +%s)
PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$TARGET_DIR" \
    /usr/bin/cargo build --release --lib -Zbuild-std=std,panic_abort --target wasm32-unknown-unknown
say "wasm build took $(( $(date +%s) - start )) s"
WASM="$TARGET_DIR/wasm32-unknown-unknown/release/webformer.wasm"
[ -f "$WASM" ] || { echo "expected $WASM after the build" >&2; exit 1; }

# 3. wasm-bindgen-cli, the version Cargo.lock pins, cached.
VER="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
[ -n "$VER" ] || { echo "wasm-bindgen not found in Cargo.lock" >&2; exit 1; }
BINDGEN_ROOT="$CACHE/wasm-bindgen-$VER"
BINDGEN="$BINDGEN_ROOT/bin/wasm-bindgen"
if [ -x "$BINDGEN" ] && "$BINDGEN" --version | grep -qF "$VER"; then
    say "wasm-bindgen-cli $VER cached at $BINDGEN_ROOT"
else
    say "installing wasm-bindgen-cli $VER into $BINDGEN_ROOT (a few minutes, once)"
    start=$(date +%s)
    mkdir -p "$CACHE"
    # The host toolchain (rustup's or Debian's) builds the CLI; no --locked, per NOTES.md.
    cargo install wasm-bindgen-cli --version "=$VER" --root "$BINDGEN_ROOT"
    say "wasm-bindgen-cli install took $(( $(date +%s) - start )) s"
fi

# 4. JS glue (webformer_wasm*) and the package's own files beside it.
say "wasm-bindgen --target web --out-name webformer_wasm --out-dir web/pkg"
rm -rf "$OUT_DIR"
"$BINDGEN" --target web --out-name webformer_wasm --out-dir "$OUT_DIR" "$WASM"
cp web/package/webformer.js web/package/webformer.d.ts web/package/package.json web/package/README.md "$OUT_DIR/"
say "wrote $(ls "$OUT_DIR" | tr '\n' ' ')($(du -h "$OUT_DIR/webformer_wasm_bg.wasm" | cut -f1) wasm)"
