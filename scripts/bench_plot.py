#!/usr/bin/env python3
"""SVG plots of webformer-bench/1 files (`webformer bench --suite ... --json`, and optionally
scripts/bench_torch.py's on the same machine), Python standard library only:

    python3 scripts/bench_plot.py OUT_DIR ours.json [theirs.json]

writes, for the rows present: lsh.svg (LSH and dense attention time against length, log-log),
fft.svg (FNet mixing and encoder attention against length), gemm.svg (GFLOP/s against size)
and decode.svg (prefill and decode tokens/s). Series from the second file are dashed.
"""
import json
import math
import os
import re
import sys

W, H, PAD = 640, 400, 60
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def number(case, prefix):
    m = re.search(prefix + r"(\d+)", case)
    return int(m.group(1)) if m else None


def axis_ticks(lo, hi):
    return [10**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def line_plot(title, xlabel, ylabel, series, logy=True):
    """series: [(label, [(x, y)], dashed)] -> SVG text (log x; log y unless logy is False)."""
    pts = [p for _, s, _ in series for p in s if p[1] and p[1] > 0]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = math.log10(min(xs)) - 0.1, math.log10(max(xs)) + 0.1
    if logy:
        y0, y1 = math.log10(min(ys)) - 0.2, math.log10(max(ys)) + 0.2
        fy = lambda y: H - PAD - (math.log10(y) - y0) / (y1 - y0) * (H - 2 * PAD)
    else:
        y0, y1 = 0, max(ys) * 1.1
        fy = lambda y: H - PAD - (y - y0) / (y1 - y0) * (H - 2 * PAD)
    fx = lambda x: PAD + (math.log10(x) - x0) / (x1 - x0) * (W - 2 * PAD)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{PAD}" y1="{H-PAD}" x2="{W-PAD}" y2="{H-PAD}" stroke="black"/>',
           f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H-PAD}" stroke="black"/>',
           f'<text x="{W/2}" y="{H-15}" text-anchor="middle">{xlabel}</text>',
           f'<text x="15" y="{H/2}" text-anchor="middle" transform="rotate(-90 15 {H/2})">{ylabel}</text>']
    for x in sorted(set(xs)):
        out.append(f'<text x="{fx(x):.1f}" y="{H-PAD+15}" text-anchor="middle">{x}</text>')
    yt = axis_ticks(10**y0, 10**y1) if logy else [y1 * i / 5 for i in range(6)]
    for y in yt:
        if (math.log10(y) if logy else y) < y0 or (math.log10(y) if logy else y) > y1:
            continue
        out.append(f'<line x1="{PAD}" y1="{fy(y):.1f}" x2="{W-PAD}" y2="{fy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{PAD-5}" y="{fy(y)+4:.1f}" text-anchor="end">{y:g}</text>')
    for i, (label, s, dashed) in enumerate(series):
        s = sorted(p for p in s if p[1] and p[1] > 0)
        if not s:
            continue
        c = COLOURS[i % len(COLOURS)]
        d = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in s)
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        out += [f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="3" fill="{c}"/>' for x, y in s]
        out.append(f'<text x="{PAD+10}" y="{PAD+15*i}" fill="{c}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)


def series(doc, bench, prefix, value="ms"):
    return [(number(r["case"], prefix), r.get(value)) for r in doc["rows"] if r["bench"] == bench and number(r["case"], prefix)]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    docs = [json.load(open(p)) for p in sys.argv[2:]]
    os.makedirs(out_dir, exist_ok=True)
    name = lambda d: d["engine"].split()[0]
    plots = {
        "lsh.svg": ("Causal attention, 8 heads x 64", "sequence length", "ms",
                    [("lsh_attention", "L"), ("dense_attention", "L")], "ms", True),
        "fft.svg": ("FNet mixing vs encoder attention, hidden 768", "sequence length", "ms",
                    [("fourier_mix", "L"), ("encoder_attention", "L")], "ms", True),
        "gemm.svg": ("GEMM f32, n x n x n", "n", "GFLOP/s", [("gemm", "")], "gflops", False),
        "decode.svg": ("SmolLM2-135M shapes", "tokens", "tokens/s", [("prefill", "P"), ("decode", "N")], "tokens_per_s", False),
    }
    for file, (title, xl, yl, benches, value, logy) in plots.items():
        lines = []
        for di, doc in enumerate(docs):
            for bench, prefix in benches:
                s = series(doc, bench, prefix, value)
                if bench == "gemm":  # one series per layout
                    for layout in ("nn", "nt"):
                        s = [(number(r["case"], ""), r.get(value)) for r in doc["rows"] if r["bench"] == "gemm" and r["case"].endswith(layout)]
                        lines.append((f"{name(doc)} {layout}", s, di > 0))
                    continue
                lines.append((f"{name(doc)} {bench}", s, di > 0))
        svg = line_plot(title, xl, yl, lines, logy)
        if svg:
            with open(os.path.join(out_dir, file), "w") as f:
                f.write(svg + "\n")
            print(f"wrote {os.path.join(out_dir, file)}")


if __name__ == "__main__":
    main()
