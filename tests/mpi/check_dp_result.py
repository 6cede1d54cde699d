#!/usr/bin/python3
"""Runs partrain-dp and checks its HDF5 result file against the schema (results/README.md):
every field present, positive times, memory categories summing to no more than peak RSS, the tracker's
parameter/gradient/optimizer bytes equal to the closed form (4Ψ, 4Ψ, 8Ψ for fp32 AdamW; mixed precision 2Ψ, 2Ψ, 12Ψ,
and 4Ψ more gradient bytes with dp.grad_reduce_dtype = fp32), bytes sent by the gradient allreduce equal to the
ring's closed form, and a refusal to overwrite the file. A bf16/fp16 run is also compared with the same run in fp32
(one bucket each): its allreduce sends exactly half the bytes (or the same, reduced in fp32).

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
        half = a["precision"] in ("bf16", "fp16")
        e = 2 if half else 4
        psi = s["predicted_params_bytes"] / e
        extra = 4 * psi if a.get("grad_reduce_dtype", "") == "fp32" else 0
        check(np.all(mem["params"] == e * psi), f"params = {e}Ψ")
        check(np.all(mem["grads"] == e * psi + extra), f"grads = {e}Ψ" + (" + 4Ψ (the fp32 reduction buffer)" if extra else ""))
        check(np.all(mem["optimizer"] == (12 if half else 8) * psi),
              "optimizer = 8Ψ (AdamW m and v)" + (" + 4Ψ fp32 master weights" if half else ""))
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
    if half and n > 1:  # the same run in fp32, one bucket each: the 16-bit gradients move half the bytes
        sent = {}
        for p in ("fp32", "half"):
            o = os.path.join(d, f"one_bucket_{p}.h5")
            extra_args = ["--set", "train.precision=fp32", "--set", "dp.grad_reduce_dtype=half"] if p == "fp32" else []
            subprocess.run(cmd[:cmd.index("--output") + 1] + [o] + cmd[cmd.index("--output") + 2:] +
                           ["--set", "dp.bucket_mib=1000"] + extra_args, check=True, stdout=subprocess.DEVNULL)
            with h5py.File(o, "r") as f:
                sent[p] = f["summary"].attrs["allreduce_bytes_sent_per_step"]
                fp32_reduce = f.attrs.get("grad_reduce_dtype", "") == "fp32"
        want = sent["fp32"] if fp32_reduce else sent["fp32"] / 2
        check(sent["half"] == want, f"allreduce bytes per step {sent['half']} vs fp32's {sent['fp32']} "
                                    f"({'equal: reduced in fp32' if fp32_reduce else 'half'} expected)")

for x in failures:
    print("FAILED:", x)
print(f"{len(failures)} failed" if failures else "ok")
sys.exit(1 if failures else 0)
