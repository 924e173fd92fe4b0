"""Plots `webformer bench fft --json` as an SVG: GPU time against sequence length, log-log,
one line per timed column of the rows (FNet mixing, attention, ...); several runs (e.g. one
per length, with different repeats) are merged by length. Standard library only.

    webformer bench fft --lens 512,4096,16384 --json > fft.json
    python3 scripts/plot_fft_bench.py fft.json [more.json ...] docs/fft_vs_attention.svg
"""

import json
import math
import sys

# Columns of a row that are times in microseconds, and how the plot names them.
SERIES = [
    ("mix_us", "FNet mixing Re(FFT2)", "#1f77b4"),
    ("mix_complex_us", "complex 2-D FFT, same size", "#9ecae1"),
    ("attention_us", "fused attention", "#d62728"),
]

W, H = 640, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60


def ticks(lo, hi):
    """Powers of ten covering [lo, hi]."""
    return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def fmt_time(us):
    if us >= 1e9:
        return f"{us / 1e6:.0f} s"
    if us >= 1e6:
        return f"{us / 1e6:.3g} s"
    if us >= 1e3:
        return f"{us / 1e3:.3g} ms"
    return f"{us:g} us"


def main(srcs, dst):
    runs = []
    for src in srcs:
        with open(src) as f:
            runs.append(json.load(f))
    v = runs[0]
    rows = sorted((r for run in runs for r in run["rows"]), key=lambda r: r["len"])
    series = [(k, name, color) for k, name, color in SERIES if any(r.get(k) is not None for r in rows)]
    # Dense attention grows as L²: where it was not run, a dashed line extends its last
    # measured point by (L / L_last)², labelled as the extrapolation it is.
    att = [r for r in rows if r.get("attention_us") is not None]
    later = [r["len"] for r in rows if r.get("attention_us") is None and att and r["len"] > att[-1]["len"]]
    extra = []
    if later:
        l0, t0 = att[-1]["len"], att[-1]["attention_us"]
        extra = [(l0, t0)] + [(l, t0 * (l / l0) ** 2) for l in later]
    lens = [r["len"] for r in rows]
    times = [r[k] for r in rows for k, _, _ in series if r.get(k) is not None] + [t for _, t in extra]
    xlo, xhi = min(lens) / 1.5, max(lens) * 1.5
    ylo, yhi = min(times) / 2, max(times) * 2
    yt = ticks(ylo, yhi)
    ylo, yhi = min(ylo, yt[0]), max(yhi, yt[-1])

    def x(l):
        return LEFT + (math.log(l) - math.log(xlo)) / (math.log(xhi) - math.log(xlo)) * (W - LEFT - RIGHT)

    def y(t):
        return H - BOTTOM - (math.log(t) - math.log(ylo)) / (math.log(yhi) - math.log(ylo)) * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">'
        f'GPU time vs sequence length, hidden {v["hidden"]} ({v["heads"]} heads for attention)</text>',
        f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">sequence length L (log scale); '
        f'{v["adapter"].split(" (Vulkan")[0]}, {v["timing"]}</text>',
        f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="black"/>',
    ]
    for t in yt:
        out.append(f'<line x1="{LEFT}" y1="{y(t):.1f}" x2="{W - RIGHT}" y2="{y(t):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{fmt_time(t)}</text>')
    for l in lens:
        out.append(f'<line x1="{x(l):.1f}" y1="{H - BOTTOM}" x2="{x(l):.1f}" y2="{H - BOTTOM + 5}" stroke="black"/>')
        out.append(f'<text x="{x(l):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{l}</text>')
    for i, (k, name, color) in enumerate(series):
        pts = [(x(r["len"]), y(r[k])) for r in rows if r.get(k) is not None]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for px, py in pts:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}"/>')
        ly = TOP + 12 + 18 * i
        out.append(f'<line x1="{LEFT + 12}" y1="{ly}" x2="{LEFT + 36}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + 42}" y="{ly + 4}">{name}</text>')
    if extra:
        path = " ".join(f"{x(l):.1f},{y(t):.1f}" for l, t in extra)
        out.append(f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5,4"/>')
        for l, t in extra[1:]:
            out.append(f'<text x="{x(l) - 6:.1f}" y="{y(t) - 8:.1f}" text-anchor="end" fill="#d62728">~{fmt_time(t)}</text>')
        ly = TOP + 12 + 18 * len(series)
        out.append(f'<line x1="{LEFT + 12}" y1="{ly}" x2="{LEFT + 36}" y2="{ly}" stroke="#d62728" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{LEFT + 42}" y="{ly + 4}">attention not run there: last point times (L / L_last)^2</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: plot_fft_bench.py BENCH.json [MORE.json ...] OUT.svg")
    main(sys.argv[1:-1], sys.argv[-1])
