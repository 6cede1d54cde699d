#!/usr/bin/python3
"""A mini-app's --dump-state against partrain-ref's after one step on the same global batch: the same names and
shapes (every parameter once, whatever the layout), the same batch, the loss within 1e-5, the parameters bit for bit
(initial values keyed by global index) and every gradient within 1e-4. The reference runs the app's own resolved deck
(--print-deck) less the keys partrain-ref does not take. A bf16/fp16 run (train.precision) against the reference in the
same precision: the parameters (fp32 master weights from the same unrounded initial values) still bit for bit, the
loss and the gradients within 2·sqrt(n)·u (docs/precision.md: n roundings along the longest path, u the unit
roundoff).

    check_dump_vs_ref.py MPIEXEC NP APP PARTRAIN_REF DECK [--set ...]
"""
import os
import subprocess
import sys
import tempfile
import tomllib

import h5py
import numpy as np

mpiexec, np_, app, ref, deck = sys.argv[1:6]
args = ["-i", deck, "--set", "train.steps=1", "--set", "train.warmup=0"] + sys.argv[6:]
fails = []
with tempfile.TemporaryDirectory() as d:
    a_dump, r_dump, r_deck = (os.path.join(d, n) for n in ("app.h5", "ref.h5", "ref.toml"))
    resolved = tomllib.loads(subprocess.run([app] + args + ["--print-deck"], check=True, capture_output=True,
                                            text=True).stdout)

    def toml(t, prefix=""):
        out = []
        for k, v in t.items():
            if isinstance(v, dict):
                out += toml(v, prefix + k + ".")
            else:
                out.append(f'"{prefix}{k}" = ' + (f'"{v}"' if isinstance(v, str) else str(v).lower()))
        return out
    with open(r_deck, "w") as f:
        f.write("\n".join(toml({k: resolved[k] for k in ("model", "data", "train")})) + "\n")
    subprocess.run([mpiexec, "-n", np_, app] + args + ["--dump-state", a_dump], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([ref, "-i", r_deck, "--dump-state", r_dump], check=True, stdout=subprocess.DEVNULL)
    precision = resolved["train"].get("precision", "fp32")
    loss_tol, grad_tol = 1e-5, 1e-4
    if precision in ("bf16", "fp16"):
        m = resolved["model"]
        n = (6 + 22 * m["gpt"]["layers"] if m["kind"] == "gpt"
             else 10 + 12 * (m["nmt"]["max_len"] + m["nmt"]["enc_layers"] + m["nmt"]["dec_layers"]) if m["kind"] == "nmt"
             else 1 + 4 * (len(m["mlp"]["widths"]) - 1))
        loss_tol = grad_tol = 2 * n ** 0.5 * (2.0 ** -8 if precision == "bf16" else 2.0 ** -11)
    with h5py.File(a_dump) as a, h5py.File(r_dump) as b:
        if abs(a["loss"][()] - b["loss"][()]) > loss_tol * abs(b["loss"][()]):
            fails.append(f"loss {a['loss'][()]} vs {b['loss'][()]}")
        for k in ["batch/inputs", "batch/targets"]:
            if not np.array_equal(a[k][()], b[k][()]):
                fails.append(f"{k} differs")
        for g, tol in [("params", 0.0), ("grads", grad_tol)]:
            if sorted(a[g].keys()) != sorted(b[g].keys()):
                fails.append(f"{g}: names differ: {sorted(set(a[g]) ^ set(b[g]))}")
            for name in b[g]:
                if name not in a[g]:
                    continue
                x, y = a[g][name][()], b[g][name][()]
                if x.shape != y.shape:
                    fails.append(f"{g}/{name} shape {x.shape} vs {y.shape}")
                    continue
                e = np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30)
                if e > tol or not np.all(np.isfinite(x)):
                    fails.append(f"{g}/{name} relative error {e:.2e}")
for x in fails:
    print("FAILED:", x)
print("ok" if not fails else f"{len(fails)} failed")
sys.exit(1 if fails else 0)
