#!/usr/bin/python3
"""Runs partrain-dp and checks its HDF5 result file against the schema (results/README.md):
every field present, positive times, memory categories summing to no more than peak RSS, the tracker's
parameter/gradient/optimizer bytes equal to the closed form (4Ψ, 4Ψ, 8Ψ for fp32 AdamW), bytes sent by the
gradient allreduce equal to the ring's closed form, and a refusal to overwrite the file.

    check_dp_result.py MPIEXEC NP PARTRAIN_DP DECK [--set dp.algorithm=ring ...]
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_checks import check_training_result  # noqa: E402

mpiexec, np_, exe, deck = sys.argv[1:5]
n = int(np_)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "dp.h5")
    steps = 6
    cmd = [mpiexec, "-n", np_, exe, "-i", deck, "--output", out, "--set", f"train.steps={steps}",
           "--set", "train.warmup=1", "--set", f"train.batch={4 * n}", "--set", "model.gpt.layers=2",
           "--set", "model.gpt.seq_len=32", "--set", "dp.bucket_mib=0.25", "--set", "train.optimizer=\"adamw\""] + sys.argv[5:]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with h5py.File(out, "r") as f:
        a = f.attrs
        failures.extend(check_training_result(f, "partrain-dp", "dp", n))
        check("[dp]" in a["config_toml"], "config_toml holds the deck")
        loss = f["steps/loss"][()]
        check(loss.shape == (steps,) and np.all(np.isfinite(loss)), "steps/loss")
        t = f["steps/time_s"][()]
        for ph in ["forward", "backward", "comm", "comm_exposed", "optimizer"]:
            v = f[f"steps/phases/{ph}_s"][()]
            check(v.shape == (steps, n) and np.all(v >= 0), f"phase {ph}")
        check(np.all(f["steps/phases/forward_s"][()] + f["steps/phases/backward_s"][()] <= t * 1.0001),
              "forward + backward within the step")
        mem = {c: f[f"memory/{c}_bytes"][()] for c in ["params", "grads", "optimizer", "activations", "comm_buffers"]}
        rss = f["memory/rss_peak_bytes"][()]
        check(np.all(sum(mem.values()) <= rss), "memory categories sum to no more than peak RSS")
        s = f["summary"].attrs
        psi = s["predicted_params_bytes"] / 4
        check(np.all(mem["params"] == 4 * psi), "params = 4Ψ")
        check(np.all(mem["grads"] == 4 * psi), "grads = 4Ψ")
        check(np.all(mem["optimizer"] == 8 * psi), "optimizer = 8Ψ (AdamW m and v)")
        check(np.all(mem["comm_buffers"] > 0) if n > 1 else True, "comm buffers counted")
        sent = f["comm/allreduce/bytes_sent"][()]
        check(sent.shape == (n,), "comm/allreduce/bytes_sent [R]")
        check(abs(s["allreduce_bytes_sent_per_step"] - s["predicted_allreduce_bytes_sent_per_step"]) < 1e-6
              and (n == 1 or s["predicted_allreduce_bytes_sent_per_step"] > 0),
              f"bytes sent per step {s['allreduce_bytes_sent_per_step']} = closed form "
              f"{s['predicted_allreduce_bytes_sent_per_step']}")
        for k in ["step_time_median_s", "samples_per_s", "tokens_per_s", "flops_per_step", "flops_per_s"]:
            check(s[k] > 0, f"summary {k} > 0")
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    check(r.returncode == 2 and "file exists" in r.stderr, "refuses to overwrite")

for x in failures:
    print("FAILED:", x)
print(f"{len(failures)} failed" if failures else "ok")
sys.exit(1 if failures else 0)
