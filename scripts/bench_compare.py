#!/usr/bin/env python3
"""Side-by-side table of two webformer-bench/1 files (e.g. `webformer bench --suite all --json
ours.json` and `scripts/bench_torch.py --json theirs.json`, run on the same machine): one
Markdown row per (bench, case) present in either, with both times and theirs / ours (above 1:
webformer is faster). Python standard library only.

    python3 scripts/bench_compare.py ours.json theirs.json > table.md
"""
import json
import sys


def load(path):
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != "webformer-bench/1":
        sys.exit(f"bench_compare: {path} is not a webformer-bench/1 file (schema {doc.get('schema')!r})")
    return doc


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours, theirs = load(sys.argv[1]), load(sys.argv[2])
    # Rows pair by (bench, case, dtype), else by (bench, case): the decode rows compare our
    # quantized model with theirs in f32 on purpose (the same model, each engine's own format).
    exact = {(r["bench"], r["case"], r["dtype"]): r for r in theirs["rows"]}
    index = {(r["bench"], r["case"]): r for r in theirs["rows"]}
    print(f"ours: {ours['engine']} on {ours['adapter']} ({ours['timing']}); "
          f"theirs: {theirs['engine']} on {theirs['adapter']} ({theirs['timing']})\n")
    print("| bench | case | ours (dtype, variant) | ms | theirs (dtype, variant) | ms | theirs / ours |")
    print("|---|---|---|---:|---|---:|---:|")
    seen = set()
    for r in ours["rows"]:
        key = (r["bench"], r["case"])
        seen.add(key)
        t = exact.get((*key, r["dtype"])) or index.get(key)
        ratio = f"{t['ms'] / r['ms']:.2f}x" if t and r["ms"] > 0 else "-"
        their = f"{t['dtype']}, {t['variant']} | {t['ms']:.3f}" if t else "- | -"
        print(f"| {r['bench']} | {r['case']} | {r['dtype']}, {r['variant']} | {r['ms']:.3f} | {their} | {ratio} |")
    for key, t in index.items():
        if key not in seen:
            print(f"| {t['bench']} | {t['case']} | - | - | {t['dtype']}, {t['variant']} | {t['ms']:.3f} | - |")


if __name__ == "__main__":
    main()
