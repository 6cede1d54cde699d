#!/usr/bin/python3
"""Side by side: partrain-dp and PyTorch DDP (gloo) on the MLP 4×Linear(1024,1024)+ReLU, 64 samples per rank, SGD,
one thread per rank, run alternately for several rounds. Prints a markdown table of median step times.

    /usr/bin/python3 benchmarks/peer/compare_dp.py [--ranks 2] [--rounds 3] [--build build/release]

Needs mpiexec on PATH, a built partrain-dp and Debian's python3-torch (for torch_ddp.py).
"""
import importlib.util
import json
import os
import re
import shutil
import statistics
import sys

from peer_run import run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "analysis"))
from tool_io import PROG, fail, one_line, parser  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def partrain_ms(build, ranks):
    out = run(["mpiexec", "-n", str(ranks), os.path.join(build, "miniapps", "partrain-dp"), "-i",
               os.path.join(ROOT, "inputs", "dp_mlp.toml"), "--set", f"train.batch={64 * ranks}"])
    m = re.search(r"step_time_median_ms=([0-9.]+)", out)
    if not m:
        fail("partrain-dp", os.path.join(build, "miniapps", "partrain-dp"), "no step_time_median_ms= in its output", 1)
    return float(m.group(1))


def torch_ms(ranks):
    out = run([sys.executable, os.path.join(HERE, "torch_ddp.py"), "--ranks", str(ranks), "--json"])
    try:
        return json.loads(out.strip().splitlines()[-1])["step_time_median_ms"]
    except (IndexError, ValueError, KeyError):
        fail("torch_ddp.py", f"--ranks {ranks} --json", f"no JSON result line in its output: {one_line(out)[-300:]}", 1)


def main():
    ap = parser(__doc__)
    ap.add_argument("--ranks", type=int, default=2, help="ranks of each run, on this machine (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds, each one run of partrain-dp then one of PyTorch DDP; the medians over rounds are "
                         "printed (default: %(default)s)")
    ap.add_argument("--build", metavar="DIR", default=os.path.join(ROOT, "build", "release"),
                    help="the build directory holding miniapps/partrain-dp (default: build/release of this checkout)")
    a = ap.parse_args()
    if a.ranks < 1:
        fail("--ranks", a.ranks, "must be at least 1")
    if a.rounds < 1:
        fail("--rounds", a.rounds, "must be at least 1")
    dp = os.path.join(a.build, "miniapps", "partrain-dp")
    if not (os.path.isfile(dp) and os.access(dp, os.X_OK)):
        fail("--build", a.build, "no miniapps/partrain-dp in it (build partrain first, or give the build directory)")
    if not shutil.which("mpiexec"):
        fail("mpiexec", "(not on PATH)", "partrain-dp is started with it")
    if importlib.util.find_spec("torch") is None:
        fail("python3-torch", "(not installed)", "torch_ddp.py needs it (scripts/install-deps --peer installs it)")
    os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    ours, theirs = [], []
    try:
        for _ in range(a.rounds):
            ours.append(partrain_ms(a.build, a.ranks))
            theirs.append(torch_ms(a.ranks))
    except RuntimeError as e:  # a run failed or timed out (peer_run.run)
        print(f"{PROG}: error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"| MLP 4×Linear(1024,1024)+ReLU, 64/rank, SGD, {a.ranks} ranks | {o:.1f} ms | PyTorch DDP gloo {t:.1f} ms"
          f" | {o / t:.2f} |   (rounds: partrain {ours}, pytorch {theirs})")


if __name__ == "__main__":
    main()
