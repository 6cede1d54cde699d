#!/usr/bin/python3
"""Side by side: partrain's reference step (bench_kernels, Google Benchmark) and PyTorch's (torch_reference.py),
one process, one thread each, run alternately for several rounds so that machine noise hits both alike; the GPT
also in bf16 (partrain's train.precision = bf16 against PyTorch's CPU autocast).
Prints a markdown table of median step times and the ratio partrain/PyTorch.

    /usr/bin/python3 benchmarks/peer/compare_reference.py [--rounds 3] [--build build/release]

Needs a built bench_kernels (benchmarks/) and Debian's python3-torch (for torch_reference.py).
"""
import importlib.util
import json
import os
import statistics
import sys

from peer_run import run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "analysis"))
from tool_io import PROG, fail, one_line, parser  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def partrain_ms(build, name):
    out = run([os.path.join(build, "benchmarks", "bench_kernels"), f"--benchmark_filter=BM_Step{name}/",
               "--benchmark_format=json"])
    try:
        bench = json.loads(out)["benchmarks"][0]
    except (ValueError, KeyError, IndexError):
        fail("bench_kernels", f"--benchmark_filter=BM_Step{name}/", "no benchmark result in its JSON output", 1)
    if bench.get("time_unit") != "ms":
        fail("bench_kernels", f"--benchmark_filter=BM_Step{name}/", f"time unit {bench.get('time_unit')}, not ms", 1)
    return bench["real_time"]


def torch_ms(model, steps, precision):
    out = run([sys.executable, os.path.join(HERE, "torch_reference.py"), "--model", model, "--steps",
               str(steps), "--precision", precision, "--json"])
    try:
        return json.loads(out.strip().splitlines()[-1])["step_time_median_ms"]
    except (IndexError, ValueError, KeyError):
        fail("torch_reference.py", f"--model {model} --json", f"no JSON result line in its output: {one_line(out)[-300:]}",
             1)


def main():
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds, each one partrain and one PyTorch measurement per model; the medians over rounds are "
                         "printed (default: %(default)s)")
    ap.add_argument("--build", metavar="DIR", default=os.path.join(HERE, "..", "..", "build", "release"),
                    help="the build directory holding benchmarks/bench_kernels (default: build/release of this "
                         "checkout)")
    a = ap.parse_args()
    if a.rounds < 1:
        fail("--rounds", a.rounds, "must be at least 1")
    bench = os.path.join(a.build, "benchmarks", "bench_kernels")
    if not (os.path.isfile(bench) and os.access(bench, os.X_OK)):
        fail("--build", a.build, "no benchmarks/bench_kernels in it (build partrain first, or give the build directory)")
    if importlib.util.find_spec("torch") is None:
        fail("python3-torch", "(not installed)", "torch_reference.py needs it (scripts/install-deps --peer installs it)")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    rows = []
    for label, name, model, steps, precision in [
            ("GPT L=4 C=256 H=4 T=128 V=512 B=8, AdamW", "Gpt", "gpt", 10, "fp32"),
            ("the GPT in bf16 (PyTorch: autocast)", "GptBf16", "gpt", 10, "bf16"),
            ("MLP 4×Linear(1024,1024)+ReLU, B=64, SGD", "Mlp", "mlp", 50, "fp32")]:
        ours, theirs = [], []
        try:
            for _ in range(a.rounds):
                ours.append(partrain_ms(a.build, name))
                theirs.append(torch_ms(model, steps, precision))
        except RuntimeError as e:  # a run failed or timed out (peer_run.run)
            print(f"{PROG}: error: {one_line(e)}", file=sys.stderr)
            sys.exit(1)
        o, t = statistics.median(ours), statistics.median(theirs)
        rows.append((label, o, t))
    print("| model (1 rank, 1 thread) | partrain ms/step | PyTorch ms/step | partrain / PyTorch |")
    print("|---|---|---|---|")
    for label, o, t in rows:
        print(f"| {label} | {o:.1f} | {t:.1f} | {o / t:.2f} |")


if __name__ == "__main__":
    main()
