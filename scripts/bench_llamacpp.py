#!/usr/bin/env python3
"""llama.cpp's CPU backend on a GGUF file, measured as llama-bench does: prompt processing of
N tokens (pp) and generation of M tokens (tg), tokens/s, median of repeats. For side-by-side
runs with `webformer bench generate` on the same file and machine (BENCHMARKS.md, decode speed).

Needs llama-cpp-python (`pip install llama-cpp-python` builds llama.cpp from source: about 18
minutes of CPU time here). Not used by CI.

    python3 scripts/bench_llamacpp.py MODEL.gguf [--pp 128,512] [--tg 64] [--threads 2] [--repeats 3] [--json]

pp: one batch of N random token ids from an empty cache (llama-bench's pp). tg: M single-token
steps from an empty cache, each evaluating one fixed random id (llama-bench's tg also feeds ids
rather than sampled tokens), so neither includes sampling: only the forward passes are timed.
"""
import argparse
import json
import random
import statistics
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--pp", default="128,512", help="prompt lengths, comma-separated")
    ap.add_argument("--tg", type=int, default=64, help="tokens generated one at a time")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    import llama_cpp  # imported late so that --help works without it

    pps = [int(x) for x in a.pp.split(",") if x]
    ctx = max(pps + [a.tg]) + 8
    llm = llama_cpp.Llama(model_path=a.model, n_ctx=ctx, n_batch=max(pps + [1]), n_threads=a.threads,
                          n_threads_batch=a.threads, logits_all=False, verbose=False)
    vocab = llm.n_vocab()
    rng = random.Random(1)
    rows = []

    def timed(run):
        times = []
        for _ in range(a.repeats):
            llm.reset()  # back to position 0: the next eval overwrites the cache from the start
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    for n in pps:
        ids = [rng.randrange(vocab) for _ in range(n)]
        s = timed(lambda: llm.eval(ids))
        rows.append({"test": f"pp{n}", "tokens": n, "s": s, "tokens_per_s": n / s})
    tok = rng.randrange(vocab)

    def generate():
        for _ in range(a.tg):
            llm.eval([tok])

    s = timed(generate)
    rows.append({"test": f"tg{a.tg}", "tokens": a.tg, "s": s, "tokens_per_s": a.tg / s})
    info = {"engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__}), CPU, {a.threads} threads",
            "model": a.model, "repeats": a.repeats, "rows": rows}
    if a.json:
        print(json.dumps(info, indent=1))
    else:
        print(info["engine"])
        for r in rows:
            print(f"{r['test']:>6}: {r['tokens_per_s']:8.1f} tokens/s ({r['s'] * 1000:.1f} ms, median of {a.repeats})")


if __name__ == "__main__":
    main()
