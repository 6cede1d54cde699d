#!/usr/bin/python3
"""partrain-nmt with nmt.update = "async": replicas (k model-parallel ranks each) training through partrain-ps's
servers in asynchronous mode. Checked statistically, as asynchronous training must be: the loss of the last ten steps
below a threshold of the first ten within 150 steps on a small learnable task; every mini-batch's gradient applied
(none lost: samples applied = batch × steps, every shard's update count = the pushes); the staleness histogram in the
result file; with the delayed buffer, fewer pushes than mini-batches when a replica falls behind.

    check_nmt_async.py MPIEXEC PARTRAIN_NMT DECK NP K DELAY THRESHOLD
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

mpiexec, app, deck, np_, k, delay, threshold = sys.argv[1:8]
steps, batch = 150, 32
args = ["-i", deck, "--set", "nmt.update=async", "--set", f"nmt.model_parallel={k}", "--set", f"nmt.delay_buffer={delay}",
        "--set", "model.nmt.vocab=16", "--set", "model.nmt.embed=32", "--set", "model.nmt.hidden=32",
        "--set", "model.nmt.enc_layers=2", "--set", "model.nmt.dec_layers=2", "--set", "model.nmt.min_len=3",
        "--set", "model.nmt.max_len=6", "--set", f"train.batch={batch}", "--set", f"train.steps={steps}",
        "--set", "train.lr=1e-2", "--set", "train.warmup=1"]
bad = []


def check(cond, what):
    if not cond:
        bad.append(what)
        print("FAILED:", what)


with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "nmt_async.h5")
    r = subprocess.run([mpiexec, "-n", np_, app] + args + ["--output", out], capture_output=True, text=True, timeout=280)
    check(r.returncode == 0 and "self-check: PASS" in r.stdout, f"run failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    if r.returncode == 0:
        with h5py.File(out) as f:
            a, s = f.attrs, f["summary"].attrs
            loss = f["steps/loss"][()]
            check(len(loss) == steps and np.all(np.isfinite(loss)), "losses")
            check(loss[-10:].mean() < float(threshold) * loss[:10].mean(),
                  f"loss {loss[:10].mean():.3f} -> {loss[-10:].mean():.3f}, not below {threshold} of it")
            replicas = (int(np_) - 1) // int(k)
            check(a["nmt_update"] == "async" and int(a["nmt_replicas"]) == replicas, "attributes")
            check(a["variant"] == f"k={k} replicas={replicas} async", f"variant {a['variant']}")
            check(f["ps/worker_samples"][()].sum() == batch * steps, f"samples applied {f['ps/worker_samples'][()]}")
            check(f["ps/worker_minibatches"][()].sum() == replicas * steps, "mini-batches")
            hist = f["ps/staleness_histogram"][()]
            check(hist.sum() == s["updates_applied"] and np.all(f["ps/shard_updates"][()] == s["updates_applied"]),
                  f"staleness histogram {hist} against {s['updates_applied']} updates")
            if int(delay) == 0:
                check(s["updates_applied"] == replicas * steps, f"{s['updates_applied']} updates, not one per mini-batch")
            else:
                check(s["updates_applied"] <= replicas * steps, "more updates than mini-batches")
print("ok" if not bad else f"{len(bad)} failed")
sys.exit(1 if bad else 0)
