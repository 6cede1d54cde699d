#!/usr/bin/python3
"""partrain-pp's result file: the shared checks (result_checks.py), then what the pipeline adds — the bubble beside
the schedule's formula, point-to-point bytes equal to the closed form, /pipeline/* per rank with the measured peak
of microbatches in flight equal to the simulator's, and a /timeline holding every F and B of every step on every
rank, in schedule order, inside the step. Then GPipe with and without recomputation: recomputation keeps less
activation memory on every rank.

    check_pp_result.py MPIEXEC NP PARTRAIN_PP DECK [--set ...]
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

mpiexec, np_, exe, deck = sys.argv[1:5]
extra = sys.argv[5:]
n = int(np_)
bad = []


def check(cond, what):
    if not cond:
        bad.append(what)


small = ["--set", "train.steps=4", "--set", "train.warmup=1", "--set", "model.gpt.layers=4", "--set",
         "model.gpt.seq_len=32", "--set", "train.batch=8"]
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "pp.h5")
    subprocess.run([mpiexec, "-n", np_, exe, "-i", deck, "--output", out] + small + extra, check=True,
                   stdout=subprocess.DEVNULL)
    with h5py.File(out, "r") as f:
        bad.extend(check_training_result(f, "partrain-pp", "pp", n))
        a, s = f.attrs, f["summary"].attrs
        p, m, v = int(s["stages"]), int(s["microbatches"]), int(s["chunks"])
        check(int(a["pp"]) == p, "root pp = summary stages")
        for ph in ["forward", "backward", "bubble", "p2p", "pipeline", "comm_exposed", "embedding_sync", "optimizer"]:
            check(f"steps/phases/{ph}_s" in f, f"phase {ph}")
        check(0 <= s["bubble_fraction"] < 1 and 0 <= s["predicted_bubble_fraction"] < 1, "bubble fractions in [0, 1)")
        check(abs(s["p2p_bytes_sent_per_step"] - s["predicted_p2p_bytes_sent_per_step"]) < 1e-6,
              f"p2p bytes {s['p2p_bytes_sent_per_step']} = closed form {s['predicted_p2p_bytes_sent_per_step']}")
        # 16-bit runs send 2-byte activations and gradients; rank 0's model states follow the mixed-precision formula.
        half = a["precision"] in ("bf16", "fp16")
        e = 2 if half else 4
        cfg = tomllib.loads(a["config_toml"])
        dp = n // (p * int(a["tp"]))
        rows = cfg["train"]["batch"] // dp * cfg["model"]["gpt"]["seq_len"]
        if v == 1 and p == 2 and int(a["tp"]) == 1:  # each stage sends one direction: every row's C values
            check(s["p2p_bytes_sent_per_step"] == rows * cfg["model"]["gpt"]["channels"] * e,
                  f"p2p bytes {s['p2p_bytes_sent_per_step']} = rows x channels x {e}")
        psi = s["predicted_params_bytes"] / e
        mem = {c: f[f"memory/{c}_bytes"][()][0] for c in ["params", "grads", "optimizer"]}
        wide = 4 * psi if cfg["dp"]["grad_reduce_dtype"] == "fp32" else 0
        check(mem["params"] == e * psi and mem["grads"] == e * psi + wide and
              mem["optimizer"] == (12 if half else 8) * psi,
              f"rank 0's model states {mem} = {e}Ψ, {e}Ψ (+ 4Ψ fp32 reduction), {12 if half else 8}Ψ (Ψ = {psi})")
        for k in ["stage", "bubble_fraction", "peak_inflight", "predicted_peak_inflight"]:
            check(f[f"pipeline/{k}"].shape == (n,), f"/pipeline/{k} [R]")
        check(np.array_equal(f["pipeline/peak_inflight"][()], f["pipeline/predicted_peak_inflight"][()]),
              f"peak in flight {f['pipeline/peak_inflight'][()]} = simulated {f['pipeline/predicted_peak_inflight'][()]}")
        tl = {k: f[f"timeline/{k}"][()] for k in ["rank", "step", "action", "microbatch", "model_chunk", "start_s", "end_s"]}
        steps = f["steps/loss"].shape[0]
        t = f["steps/time_s"][()]
        for r in range(n):
            for st in range(steps):
                sel = (tl["rank"] == r) & (tl["step"] == st)
                nf, nb = np.sum(tl["action"][sel] == 0), np.sum(tl["action"][sel] == 1)
                check(nf == m * v and nb == m * v, f"rank {r} step {st}: {nf} F and {nb} B, wanted {m * v} each")
                starts, ends = tl["start_s"][sel], tl["end_s"][sel]
                check(np.all(ends >= starts) and np.all(starts[1:] >= ends[:-1] - 1e-9), f"rank {r} step {st}: ordered")
                check(ends.max() <= t[st, r] * 1.0001, f"rank {r} step {st}: inside the step")
    # GPipe keeps every microbatch's activations; with recomputation only each chunk's input.
    mem = {}
    for rec in ["false", "true"]:
        o = os.path.join(d, f"gpipe_{rec}.h5")
        subprocess.run([mpiexec, "-n", np_, exe, "-i", deck, "--output", o] + small + extra +
                       ["--set", "pp.schedule=gpipe", "--set", "pp.chunks=1", "--set", f"pp.recompute={rec}"],
                       check=True, stdout=subprocess.DEVNULL)
        with h5py.File(o, "r") as f:
            mem[rec] = f["memory/activations_bytes"][()]
    check(np.all(mem["true"] < mem["false"]), f"recompute keeps less activation memory: {mem['true']} vs {mem['false']}")

for x in bad:
    print("FAILED:", x)
print(f"{len(bad)} failed" if bad else "ok")
sys.exit(1 if bad else 0)
