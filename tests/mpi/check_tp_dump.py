#!/usr/bin/python3
"""partrain-tp's --dump-state, gathered from the shards, against partrain-ref's after one step on the same global batch: the same
names and shapes, the same batch, loss within 1e-5 and every parameter and gradient within DESIGN.md's
tolerances; and its result file carries the layout and Megatron's per-layer byte count beside the measurement (with
cp.degree > 1, also context parallelism's bytes against the formula, its attention time, exposed share and phase).

    check_tp_dump.py MPIEXEC NP PARTRAIN_TP PARTRAIN_REF DECK [--set ...]
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

mpiexec, np_, tp_exe, ref_exe, deck = sys.argv[1:6]
extra = sys.argv[6:]
# t = the ranks, unless --set tp.degree=T makes it a dp × tp grid
tp_degree = int(next((a.split("=", 1)[1] for a in extra if a.startswith("tp.degree=")), np_))
cp_degree = int(next((a.split("=", 1)[1] for a in extra if a.startswith("cp.degree=")), 1))
common = ["--set", "train.steps=1", "--set", "train.warmup=0", "--set", "model.gpt.layers=2",
          "--set", "model.gpt.seq_len=16", "--set", "model.gpt.channels=32", "--set", "model.gpt.vocab=64"] + extra
fails = []
with tempfile.TemporaryDirectory() as d:
    tp_dump, ref_dump, res = (os.path.join(d, n) for n in ("tp.h5", "ref.h5", "res.h5"))
    subprocess.run([mpiexec, "-n", np_, tp_exe, "-i", deck, "--dump-state", tp_dump, "--output", res] + common,
                   check=True, stdout=subprocess.DEVNULL)
    ref_args = common[: len(common) - len(extra)]  # the tensor-parallel keys are not the reference's
    subprocess.run([ref_exe, "-i", deck.replace("tp_gpt_small", "ref_gpt_small"), "--dump-state", ref_dump,
                    "--set", "train.batch=8"] + ref_args, check=True, stdout=subprocess.DEVNULL)
    with h5py.File(tp_dump) as a, h5py.File(ref_dump) as b:
        if abs(a["loss"][()] - b["loss"][()]) > 1e-5 * abs(b["loss"][()]):
            fails.append(f"loss {a['loss'][()]} vs {b['loss'][()]}")
        for k in ["batch/inputs", "batch/targets"]:
            if not np.array_equal(a[k][()], b[k][()]):
                fails.append(f"{k} differs")
        if sorted(a["params"].keys()) != sorted(b["params"].keys()):
            fails.append("parameter names differ")
        for g, tol in [("params", 0.0), ("grads", 1e-4)]:  # one step: the initial parameters, bit for bit
            for name in b[g]:
                x, y = a[g][name][()], b[g][name][()]
                if x.shape != y.shape:
                    fails.append(f"{g}/{name} shape {x.shape} vs {y.shape}")
                    continue
                e = np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30)
                if e > tol or not np.all(np.isfinite(x)):
                    fails.append(f"{g}/{name} relative error {e:.2e}")
    with h5py.File(res) as f:
        s, at = f["summary"].attrs, f.attrs
        strategies = ("tp+cp", "tp+sp+cp") if cp_degree > 1 else ("tp", "tp+sp")
        if int(at["tp"]) != tp_degree or "layout" not in at or at["strategy"] not in strategies:
            fails.append("tp / layout / strategy attributes")
        if cp_degree > 1:
            if int(at["cp_degree"]) != cp_degree or f"cp={cp_degree}" not in at["layout"]:
                fails.append(f"cp_degree / layout attributes: {at['cp_degree']}, {at['layout']}")
            m, p = s["cp_bytes_sent_per_layer_per_microbatch"], s["predicted_cp_bytes_sent_per_layer_per_microbatch"]
            if m != p or m <= 0:
                fails.append(f"cp bytes per layer {m} vs the formula's {p}")
            if not 0 < s["cp_attention_s"] and 0 <= s["cp_exposed_share"] <= 1:
                fails.append(f"cp attention {s['cp_attention_s']} s, exposed share {s['cp_exposed_share']}")
            if "steps/phases/cp_comm_s" not in f or "steps/phases/cp_attention_s" not in f:
                fails.append("cp_comm / cp_attention phases")
        m, p = s["tp_block_bytes_sent_per_layer_per_microbatch"], s["predicted_tp_block_bytes_sent_per_layer_per_microbatch"]
        if abs(m - p) > 1e-6 * p:
            fails.append(f"tp bytes per layer {m} vs Megatron's 8bsh(t-1)/t {p}")
        if "steps/phases/tp_comm_s" not in f:
            fails.append("tp_comm phase")
for x in fails:
    print("FAILED:", x)
print("ok" if not fails else f"{len(fails)} failed")
sys.exit(1 if fails else 0)
