#!/usr/bin/env bash
# Runs the benchmark suites on a GPU machine, ours and PyTorch's side by side in one run,
# and writes both JSON files and a comparison table:
#
#   bash scripts/bench_device.sh [--quick] [OUT_DIR]      # default OUT_DIR: bench-out
#
# Prepare here (the GPU machine has no network and takes a small working tree):
#   cargo build --release                       # the binary it runs: target/release/webformer
#   the Vulkan loader as Debian packages in .gl/ (../shared/NOTES.md section 2: apt-get download
#   libvulkan1 libegl1 ...); carry .gl and target/release/webformer to the machine.
# On the machine it unpacks .gl/*.deb when no Vulkan loader is installed, then runs
# `webformer bench --suite all` (synthetic SmolLM2 for decode: no model file is needed) and
# scripts/bench_torch.py with the same sizes, each under a time limit so the whole run ends
# within 8 minutes; --quick runs one small size per benchmark (a smoke run, ~1 minute).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
if [ "${1:-}" = "--quick" ]; then
    quick=(--quick)
    shift
fi
out=${1:-bench-out}
mkdir -p "$out"
bin=${WEBFORMER_BIN:-target/release/webformer}
[ -x "$bin" ] || { echo "bench_device: no $bin; build it with cargo build --release (or set WEBFORMER_BIN)" >&2; exit 1; }

# grep reads all of it (no -q): an early exit would stop ldconfig with SIGPIPE, which pipefail counts.
if ! ldconfig -p 2>/dev/null | grep libvulkan.so.1 >/dev/null; then
    ls .gl/*.deb >/dev/null 2>&1 || { echo "bench_device: no Vulkan loader and no .gl/*.deb to unpack" >&2; exit 1; }
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
"$bin" info > "$out/info.txt"
head -5 "$out/info.txt"

# Ours first, then theirs, each with its own budget: 270 s + 150 s leaves room for start-up.
echo "== webformer bench --suite all ${quick[*]}"
timeout 270 "$bin" bench --suite all "${quick[@]}" --json "$out/webformer.json" || echo "bench_device: webformer's suite stopped (status $?)" >&2
echo "== scripts/bench_torch.py --suite all ${quick[*]}"
timeout 150 python3 scripts/bench_torch.py --suite all "${quick[@]}" --json "$out/torch.json" || echo "bench_device: the torch suite stopped (status $?)" >&2

if [ -s "$out/webformer.json" ] && [ -s "$out/torch.json" ]; then
    python3 scripts/bench_compare.py "$out/webformer.json" "$out/torch.json" | tee "$out/compare.md"
    python3 scripts/bench_plot.py "$out" "$out/webformer.json" "$out/torch.json"
elif [ -s "$out/webformer.json" ]; then
    python3 scripts/bench_plot.py "$out" "$out/webformer.json"
fi
echo "== results in $out/"
