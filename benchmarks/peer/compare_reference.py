#!/usr/bin/python3
"""Side by side: partrain's reference step (bench_kernels, Google Benchmark) and PyTorch's (torch_reference.py),
one process, one thread each, run alternately for several rounds so that machine noise hits both alike.
Prints a markdown table of median step times and the ratio partrain/PyTorch.

    /usr/bin/python3 benchmarks/peer/compare_reference.py [--rounds 3] [--build build/release]
"""
import argparse
import json
import os
import statistics
import sys

from peer_run import run

HERE = os.path.dirname(os.path.abspath(__file__))


def partrain_ms(build, name):
    out = run([os.path.join(build, "benchmarks", "bench_kernels"), f"--benchmark_filter=BM_Step{name}/",
               "--benchmark_format=json"])
    bench = json.loads(out)["benchmarks"][0]
    assert bench["time_unit"] == "ms"
    return bench["real_time"]


def torch_ms(model, steps):
    out = run([sys.executable, os.path.join(HERE, "torch_reference.py"), "--model", model, "--steps",
               str(steps), "--json"])
    return json.loads(out.strip().splitlines()[-1])["step_time_median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build", "release"))
    a = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    rows = []
    for label, name, model, steps in [("GPT L=4 C=256 H=4 T=128 V=512 B=8, AdamW", "Gpt", "gpt", 10),
                                      ("MLP 4×Linear(1024,1024)+ReLU, B=64, SGD", "Mlp", "mlp", 50)]:
        ours, theirs = [], []
        for _ in range(a.rounds):
            ours.append(partrain_ms(a.build, name))
            theirs.append(torch_ms(model, steps))
        o, t = statistics.median(ours), statistics.median(theirs)
        rows.append((label, o, t))
    print("| model (1 rank, 1 thread) | partrain ms/step | PyTorch ms/step | partrain / PyTorch |")
    print("|---|---|---|---|")
    for label, o, t in rows:
        print(f"| {label} | {o:.1f} | {t:.1f} | {o / t:.2f} |")


if __name__ == "__main__":
    main()
