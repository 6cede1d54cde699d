#!/usr/bin/python3
"""partrain-nmt against the serial reference over 20 steps: the losses of the hybrid (k model-parallel ranks ×
replicas) within 1e-4 of partrain-ref's on the same deck, the result file's shared checks, the per-rank idle shares
(/nmt/idle_share) and the wavefront model's prediction beside them, the layout attributes.

    check_nmt.py MPIEXEC NP PARTRAIN_NMT PARTRAIN_REF DECK K [--set ...]
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

mpiexec, np_, app, ref, deck, k = sys.argv[1:7]
extra = sys.argv[7:]
n = int(np_)
args = ["-i", deck, "--set", f"nmt.model_parallel={k}", "--set", "train.steps=20", "--set", "train.warmup=2"] + extra
bad = []


def check(cond, what):
    if not cond:
        bad.append(what)
        print("FAILED:", what)


with tempfile.TemporaryDirectory() as d:
    resolved = tomllib.loads(subprocess.run([app] + args + ["--print-deck"], check=True, capture_output=True,
                                            text=True).stdout)

    def toml(t, prefix=""):
        out = []
        for key, v in t.items():
            if isinstance(v, dict):
                out += toml(v, prefix + key + ".")
            else:
                out.append(f'"{prefix}{key}" = ' + (f'"{v}"' if isinstance(v, str) else str(v).lower()))
        return out
    r_deck = os.path.join(d, "ref.toml")
    with open(r_deck, "w") as f:
        f.write("\n".join(toml({key: resolved[key] for key in ("model", "data", "train")})) + "\n")
    a_out, r_out = os.path.join(d, "nmt.h5"), os.path.join(d, "ref.h5")
    r = subprocess.run([mpiexec, "-n", np_, app] + args + ["--output", a_out], capture_output=True, text=True)
    check(r.returncode == 0 and "self-check: PASS" in r.stdout, f"partrain-nmt failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    subprocess.run([ref, "-i", r_deck, "--output", r_out], check=True, capture_output=True)
    if r.returncode == 0:
        with h5py.File(a_out) as f, h5py.File(r_out) as g:
            for p in check_training_result(f, "partrain-nmt", "nmt", n):
                check(False, p)
            la, lr = f["steps/loss"][()], g["steps/loss"][()]
            e = np.max(np.abs(la - lr) / np.abs(lr))
            check(len(la) == 20 and e <= 1e-4, f"losses over 20 steps differ from the reference by {e:.2e}")
            idle = f["nmt/idle_share"][()]
            s = f["summary"].attrs
            check(idle.shape == (n,) and np.all((idle >= 0) & (idle < 1)), f"/nmt/idle_share {idle}")
            if int(k) == 1:
                # alone, a rank never waits for another: nothing is timed as idle at all
                check(np.all(idle == 0) and s["predicted_idle_share_max"] == 0, f"k = 1 idles: {idle}")
            else:
                check(s["predicted_idle_share_max"] > 0 and s["idle_share_max"] > 0, "k > 1: no fill/drain idle")
            a = f.attrs
            check(int(a["nmt_model_parallel"]) == int(k) and int(a["pp"]) == int(k) and
                  int(a["dp"]) * int(k) == n, f"layout attributes {a['nmt_model_parallel']} {a['dp']} {a['pp']}")
            check(a["variant"].startswith(f"k={k} replicas="), f"variant {a['variant']}")
print("ok" if not bad else f"{len(bad)} failed")
sys.exit(1 if bad else 0)
