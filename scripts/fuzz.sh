#!/usr/bin/env bash
# Fuzzes webformer's file parsers with cargo-fuzz (libFuzzer, nightly Rust) for SECONDS each
# (default 60): the GGUF loader, the safetensors + config.json loader and the tokenizer input
# path. Each target starts from the committed seeds (fuzz/seeds/<target>) and grows a working
# corpus in fuzz/corpus/<target> (not committed). A crash stops the script with libFuzzer's
# report; copy the input it names into fuzz/regressions/<target>/ so that tests/robust.rs
# (fuzz_inputs_replay) keeps it fixed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# libFuzzer needs unstable compiler flags: the nightly toolchain when rustup has one
# (`rustup toolchain install nightly`), else the default toolchain with RUSTC_BOOTSTRAP=1 (which
# unlocks them on a stable rustc). cargo-fuzz is installed into
# ${FUZZ_TOOLS:-$HOME/.cache/webformer/fuzz-tools} when missing, and the build is kept in
# ${FUZZ_TARGET:-$HOME/.cache/webformer/fuzz-target} so that later runs rebuild webformer only.
# The parsers are safe Rust, so the default build has no sanitizer (faster to build and run);
# set FUZZ_SANITIZER=address for AddressSanitizer (nightly only).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf safetensors_config tokenizer)
tools=${FUZZ_TOOLS:-$HOME/.cache/webformer/fuzz-tools}
export PATH="$tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz into $tools"
    cargo install --quiet cargo-fuzz --root "$tools"
fi
export CARGO_TARGET_DIR=${FUZZ_TARGET:-$HOME/.cache/webformer/fuzz-target}
if cargo +nightly --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
else
    echo "fuzz: no nightly toolchain; using $(cargo --version) with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi
# A fixed seed (FUZZ_SEED, default 1) makes a run repeatable: the same corpus and seed take
# the same path, so a crash that CI reports is found again here by the same command.
seed=${FUZZ_SEED:-1}
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    # Past crashes start the corpus too (libFuzzer reads every directory, writes to the first).
    dirs=("corpus/$t" "seeds/$t")
    [ -d "regressions/$t" ] && dirs+=("regressions/$t")
    echo "== fuzz $t for ${seconds} s (seed $seed)"
    # -rss_limit_mb: a parser that allocates what a hostile header asks for fails here.
    set +e
    "${cargo[@]}" fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -seed="$seed" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 2>&1 \
        | grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|==|SUMMARY|error.*|.*ERROR|.*panicked|.*Test unit written)"
    status=${PIPESTATUS[0]}
    set -e
    [ "$status" -eq 0 ] || { echo "fuzz: target $t failed (status $status); see fuzz/artifacts/$t and the build output above" >&2; exit 1; }
done
echo "== fuzz: no crashes in ${#targets[@]} targets x ${seconds} s"
