#!/usr/bin/python3
"""partrain-ps with ps.hybrid = true (docs/ps.md "Hybrid") against partrain-ref and against the designs it replaces,
one case per ctest:

  exact   the --dump-state after several steps (parameters after K-1 updates — tables, AdaGrad's lazy rows and the
          dense layers — and the last step's gradients) and every step's loss against partrain-ref's on the same
          deck: bit for bit with one worker (fp32: the worker's compact tables add a row's contributions in the
          reference's order, the server's one-worker sum is that gradient, the same AdaGrad kernel); within 1e-9
          (fp64) with 2 and 3 workers, 1 and 2 servers, and 3 workers sharing a batch of 64 unevenly
  bytes   the result file's bytes per worker and step: the sparse exchange is exactly rows × (8 + 2·D·4) plus the
          counts; the same deck as a dense parameter server (ps.hybrid = false) and as partrain-dp moves the
          /summary's formulas for them (measured from their own counters), and the hybrid less than 1/50 of either;
          the loss falls (last 4 steps below 0.9 × the first 4 in 30 steps), the shared result checks

    check_ps_hybrid.py MPIEXEC PARTRAIN_PS PARTRAIN_REF PARTRAIN_DP DECK CASE
"""
import os
import subprocess
import sys
import tempfile
import tomllib

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_checks import check_training_result  # noqa: E402

mpiexec, ps, ref, dp, deck, case = sys.argv[1:7]
bad = []
tmp = tempfile.mkdtemp(prefix="check_ps_hybrid_")
HYBRID = ["--set", "ps.hybrid=true"]


def check(cond, what):
    if not cond:
        bad.append(what)
        print("FAILED:", what, flush=True)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    check(r.returncode == 0 and "self-check: PASS" in r.stdout,
          f"{' '.join(cmd)}: exit code {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def path(name):
    return os.path.join(tmp, name)


def compare(label, np_, args, tol, ps_args=()):
    """partrain-ps (hybrid) on np_ ranks against partrain-ref: dump and losses; tol 0 means bit for bit."""
    a_h5, a_dump, r_h5, r_dump = (path(f"{label}_{n}") for n in ("ps.h5", "ps_dump.h5", "ref.h5", "ref_dump.h5"))
    run([mpiexec, "-n", str(np_), ps, "-i", deck] + HYBRID + list(ps_args) + args +
        ["--output", a_h5, "--dump-state", a_dump])
    run([ref, "-i", deck] + args + ["--output", r_h5, "--dump-state", r_dump])
    if bad:
        return
    with h5py.File(a_h5) as a, h5py.File(r_h5) as b:
        la, lb = a["steps/loss"][()], b["steps/loss"][()]
        e = np.max(np.abs(la - lb) / np.abs(lb))
        check(e <= tol, f"{label}: losses differ by {e:.2e} (tolerance {tol})")
    with h5py.File(a_dump) as a, h5py.File(r_dump) as b:
        for g in ("params", "grads"):
            check(sorted(a[g]) == sorted(b[g]), f"{label}: {g} names {sorted(a[g])} vs {sorted(b[g])}")
            worst = 0.0
            for n in b[g]:
                if n not in a[g]:
                    continue
                x, y = a[g][n][()], b[g][n][()]
                if x.shape != y.shape:
                    check(False, f"{label}: {g}/{n} shape {x.shape} vs {y.shape}")
                    continue
                d = np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300)
                worst = max(worst, d)
                check(d <= tol, f"{label}: {g}/{n} differs by {d:.2e} of its largest element (tolerance {tol})")
            print(f"{label}: {g} largest relative difference {worst:.2e}", flush=True)


SMALL = ["--set", "model.sparse_mlp.rows=3000", "--set", "train.steps=4", "--set", "train.warmup=1"]
if case == "exact":
    compare("fp32_1w", 2, SMALL, 0.0)
    fp64 = SMALL + ["--set", "model.dtype=fp64"]
    compare("fp64_2w", 3, fp64, 1e-9)
    compare("fp64_2s_2w", 4, fp64, 1e-9, ["--set", "ps.servers=2"])
    compare("fp64_3w_uneven", 4, fp64 + ["--set", "train.batch=64"], 1e-9)
elif case == "bytes":
    args = ["--set", "model.sparse_mlp.rows=20000"]
    h, d, p = path("hybrid.h5"), path("dense_ps.h5"), path("dp.h5")
    run([mpiexec, "-n", "3", ps, "-i", deck] + HYBRID + args + ["--output", h])
    run([mpiexec, "-n", "3", ps, "-i", deck] + args + ["--set", "train.steps=6", "--set", "train.warmup=1",
                                                        "--output", d])
    run([mpiexec, "-n", "2", dp, "-i", deck] + args + ["--set", "train.steps=6", "--set", "train.warmup=1",
                                                       "--set", "dp.algorithm=ring", "--output", p])
    if not bad:
        cfg = tomllib.load(open(deck, "rb"))["model"]["sparse_mlp"]
        D = cfg["dim"]
        with h5py.File(h) as f:
            bad += check_training_result(f, "partrain-ps", "ps", 3)
            s = f["summary"].attrs
            rows, sparse = s["hybrid_rows_pulled_per_step"], s["hybrid_sparse_bytes_per_step"]
            # keys out (8 bytes), rows in and gradients out (D fp32 each), and the counts' alltoall (8 bytes to
            # and from each of the 2 other ranks)
            want = rows * (8 + 2 * D * 4) + 2 * 8 * 2
            check(abs(sparse - want) <= 1e-9 * want, f"sparse bytes {sparse} != rows x (8 + 2 D 4) + counts = {want}")
            check(rows > 0, "no rows pulled")
            hybrid, dense_ps, dp_b = s["hybrid_bytes_per_step"], s["dense_ps_bytes_per_step"], s["dp_bytes_per_step"]
            check(hybrid * 50 < dense_ps and hybrid * 50 < dp_b, f"hybrid {hybrid} not < 1/50 of {dense_ps}, {dp_b}")
            loss = f["steps/loss"][()]
            check(loss[-4:].mean() < 0.9 * loss[:4].mean(), f"loss {loss[:4].mean():.4f} -> {loss[-4:].mean():.4f}")
            print(f"hybrid: {rows:.0f} rows, {hybrid:.0f} B per worker-step; dense PS {dense_ps:.0f}, DP {dp_b:.0f} "
                  f"(formulas); loss {loss[:4].mean():.4f} -> {loss[-4:].mean():.4f}", flush=True)
        # the designs it replaces, measured: a dense PS worker pulls and pushes the whole model every step (and
        # pulls it once more at the end: steps + 1/2 round trips), a DP rank runs the ring allreduce of the model;
        # both within 1% (headers, ring blocks)
        with h5py.File(d) as f:
            steps = len(f["steps/loss"])
            moved = sum(f[f"comm/{op}/bytes_sent"][()][1:].sum() + f[f"comm/{op}/bytes_received"][()][1:].sum()
                        for op in f["comm"]) / 2 / (steps + 0.5)
            check(abs(moved - dense_ps) < 0.01 * dense_ps, f"dense PS worker moved {moved:.0f} B/step, formula {dense_ps:.0f}")
            print(f"dense PS measured {moved:.0f} B per worker-step", flush=True)
        with h5py.File(p) as f:
            steps = len(f["steps/loss"])
            moved = (f["comm/allreduce/bytes_sent"][()].sum() + f["comm/allreduce/bytes_received"][()].sum()) / 2 / steps
            check(abs(moved - dp_b) < 0.01 * dp_b, f"DP rank moved {moved:.0f} B/step, formula {dp_b:.0f}")
            print(f"DP measured {moved:.0f} B per rank-step", flush=True)
else:
    check(False, f"unknown case {case}")

print("ok" if not bad else f"{len(bad)} failed")
sys.exit(1 if bad else 0)
