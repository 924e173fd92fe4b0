#!/usr/bin/env python3
"""The shapes of `webformer bench --suite`, in PyTorch on the same machine, printed as the
same JSON schema (webformer-bench/1): one row per (bench, case), so the two files compare row
by row. cuBLAS GEMM in f32 with TF32 off; scaled_dot_product_attention in f32; FNet mixing as
torch.fft.fft2(h).real; prefill and greedy decode with Hugging Face transformers' eager
LlamaForCausalLM of SmolLM2-135M's shapes and random weights (speed does not depend on them).

    python3 scripts/bench_torch.py --suite all [--quick] [--device cuda|cpu] [--json FILE]

Times are medians of --repeats after a warm-up: CUDA events on a GPU, the host clock on CPU.
Needs torch (and transformers for the decode suite).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SCHEMA = "webformer-bench/1"


def timer(device, fn, repeats):
    """Median milliseconds of fn() after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def row(bench, case, dtype, variant, ms, **rates):
    r = {"bench": bench, "case": case, "dtype": dtype, "variant": variant, "ms": ms}
    r.update(rates)
    return r


def kernels(dev, quick, repeats):
    out = []
    for n in [256] if quick else [1024, 2048, 4096]:
        a = torch.randn(n, n, device=dev)
        b = torch.randn(n, n, device=dev)
        for layout, fn in (("nn", lambda: a @ b), ("nt", lambda: a @ b.T)):
            ms = timer(dev, fn, repeats)
            out.append(row("gemm", f"{n}x{n}x{n} {layout}", "f32 x f32", "torch matmul", ms, gflops=2 * n**3 / ms / 1e6))
    return out


def sdpa(dev, lq, lk, h, d, causal):
    q = torch.randn(1, h, lq, d, device=dev)
    k = torch.randn(1, h, lk, d, device=dev)
    v = torch.randn(1, h, lk, d, device=dev)
    return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def attention(dev, quick, repeats):
    out = []
    for l in [256] if quick else [512, 2048, 8192]:
        ms = timer(dev, sdpa(dev, l, l, 12, 64, True), repeats)
        flops = 2 * 2 * 12 * l * l * 64 / 2  # causal: half the scores
        out.append(row("attention_prefill", f"L{l} h12 d64 causal", "f32", "sdpa", ms, gflops=flops / ms / 1e6))
    for n in [256] if quick else [1024, 8192]:
        ms = timer(dev, sdpa(dev, 1, n, 12, 64, False), repeats)
        out.append(row("attention_decode", f"cache{n} h12 d64", "f32", "sdpa", ms, gbps=2 * n * 12 * 64 * 4 / ms / 1e6))
    return out


def lsh(dev, quick, repeats):
    # torch has no LSH attention: the dense rows of the lsh suite, at its lengths.
    out = []
    for l in [512] if quick else [1024, 4096, 16384, 65536]:
        ms = timer(dev, sdpa(dev, l, l, 8, 64, True), repeats)
        out.append(row("dense_attention", f"L{l} h8 d64 causal", "f32", "sdpa", ms))
    return out


def fft(dev, quick, repeats):
    out = []
    for l in [512] if quick else [512, 4096, 16384]:
        h = torch.randn(l, 768, device=dev)
        out.append(row("fourier_mix", f"L{l} d768", "f32", "torch.fft.fft2", timer(dev, lambda: torch.fft.fft2(h).real, repeats)))
        out.append(row("encoder_attention", f"L{l} h12 d64", "f32", "sdpa", timer(dev, sdpa(dev, l, l, 12, 64, False), repeats)))
    return out


def decode(dev, quick, repeats):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
        rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
    )
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).to(dev).eval()
    p, n = (32, 16) if quick else (128, 128)
    prompt = torch.randint(0, config.vocab_size, (1, p), device=dev)
    with torch.no_grad():
        ms = timer(dev, lambda: model(prompt), repeats)
        prefill = row("prefill", f"smollm2-135m P{p}", "f32", "transformers eager", ms, tokens_per_s=p / ms * 1e3)
        short = prompt[:, :8]
        gen = lambda: model.generate(short, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        ms = timer(dev, gen, repeats)
    # The decode row is per token (prefill of the 8-token prompt included, as it is tiny).
    per_token = ms / n
    return [prefill, row("decode", f"smollm2-135m N{n}", "f32", "transformers eager", per_token, tokens_per_s=1e3 / per_token)]


SUITES = {"kernels": kernels, "attention": attention, "lsh": lsh, "fft": fft, "decode": decode}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="all", choices=[*SUITES, "all"])
    ap.add_argument("--quick", action="store_true", help="one small size per benchmark")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="write the document here (a summary goes to stderr)")
    a = ap.parse_args()
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    names = list(SUITES) if a.suite == "all" else [a.suite]
    rows = []
    for name in names:
        rows += SUITES[name](a.device, a.quick, a.repeats)
    adapter = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    doc = {
        "schema": SCHEMA, "engine": f"torch {torch.__version__}", "adapter": adapter,
        "timing": "cuda events" if a.device == "cuda" else "host clock",
        "repeats": a.repeats, "quick": a.quick, "unix_time": int(time.time()), "rows": rows,
    }
    text = json.dumps(doc, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    for r in rows:
        print(f"{r['bench']:<18} {r['case']:<26} {r['ms']:>10.3f} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
