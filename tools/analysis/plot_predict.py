#!/usr/bin/python3
"""Draws partrain-predict's --csv table: predicted step time split into compute, bubble, optimizer and exposed
communication, and the scaling efficiency, against the rank count (Debian's python3-matplotlib).

    /usr/bin/python3 tools/analysis/plot_predict.py table.csv --out predict.png
"""
import argparse
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table")
    ap.add_argument("--out", default="predict.png")
    a = ap.parse_args()
    with open(a.table) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{a.table}: no rows")
    n = [int(r["ranks"]) for r in rows]
    parts = [("compute_s", "compute"), ("bubble_s", "bubble"), ("optimizer_s", "optimizer"), ("comm_exposed_s", "exposed comm")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    bottom = [0.0] * len(rows)
    x = range(len(rows))
    for key, label in parts:
        v = [1e3 * float(r[key]) for r in rows]
        ax1.bar(x, v, bottom=bottom, label=label)
        bottom = [b + y for b, y in zip(bottom, v)]
    ax1.set_xticks(list(x), [f"{r['ranks']}\n{r['dp']}×{r['tp']}×{r['pp']}" for r in rows])
    ax1.set_ylabel("predicted ms per step")
    ax1.legend()
    ax2.plot(n, [100 * float(r["efficiency"]) for r in rows], marker="o")
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel("ranks")
    ax2.set_ylabel("predicted efficiency (%)")
    ax2.set_ylim(0, 110)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
