#!/usr/bin/python3
"""Side by side: partrain-dp and PyTorch DDP (gloo) on the MLP 4×Linear(1024,1024)+ReLU, 64 samples per rank, SGD,
one thread per rank, run alternately for several rounds. Prints a markdown table of median step times.

    /usr/bin/python3 benchmarks/peer/compare_dp.py [--ranks 2] [--rounds 3] [--build build/release]
"""
import argparse
import json
import os
import re
import statistics
import sys

from peer_run import run

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def partrain_ms(build, ranks):
    out = run(["mpiexec", "-n", str(ranks), os.path.join(build, "miniapps", "partrain-dp"), "-i",
               os.path.join(ROOT, "inputs", "dp_mlp.toml"), "--set", f"train.batch={64 * ranks}"])
    return float(re.search(r"step_time_median_ms=([0-9.]+)", out).group(1))


def torch_ms(ranks):
    out = run([sys.executable, os.path.join(HERE, "torch_ddp.py"), "--ranks", str(ranks), "--json"])
    return json.loads(out.strip().splitlines()[-1])["step_time_median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    a = ap.parse_args()
    os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    ours, theirs = [], []
    for _ in range(a.rounds):
        ours.append(partrain_ms(a.build, a.ranks))
        theirs.append(torch_ms(a.ranks))
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"| MLP 4×Linear(1024,1024)+ReLU, 64/rank, SGD, {a.ranks} ranks | {o:.1f} ms | PyTorch DDP gloo {t:.1f} ms"
          f" | {o / t:.2f} |   (rounds: partrain {ours}, pytorch {theirs})")


if __name__ == "__main__":
    main()
