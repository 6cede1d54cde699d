#!/usr/bin/python3
"""partrain-ep's result file: the shared checks (result_checks.py), then the mixture of experts' own records —
/moe/tokens_per_expert [steps, MoE blocks, E] with every choice accounted for (kept rows + dropped choices = B·T·k per
MoE block and step), the load imbalance recomputed from it, the auxiliary loss, and all-to-all bytes that are there
exactly when the experts are spread (ep.degree > 1) and none otherwise.

    check_ep_result.py MPIEXEC NP PARTRAIN_EP DECK [--set ...]
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
args = ["-i", deck] + sys.argv[5:]
bad = []
resolved = tomllib.loads(subprocess.run([exe] + args + ["--print-deck"], check=True, capture_output=True, text=True).stdout)
g, t = resolved["model"]["gpt"], resolved["train"]
moe = g["moe"]
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "r.h5")
    subprocess.run([mpiexec, "-n", np_, exe] + args + ["--output", out], check=True, stdout=subprocess.DEVNULL)
    with h5py.File(out) as f:
        bad += check_training_result(f, "partrain-ep", "ep", int(np_))
        tokens, dropped, aux = f["moe/tokens_per_expert"][()], f["moe/dropped"][()], f["moe/aux_loss"][()]
        blocks = sum(1 for l in range(g["layers"]) if l % moe["every"] == moe["every"] - 1)
        steps = t["steps"]
        if tokens.shape != (steps, blocks, moe["experts"]):
            bad.append(f"/moe/tokens_per_expert shape {tokens.shape}, wanted {(steps, blocks, moe['experts'])}")
        choices = t["batch"] * g["seq_len"] * moe["top_k"]
        total = tokens.sum(axis=2).sum(axis=1) + dropped
        if not np.array_equal(total, np.full(steps, float(choices * blocks))):
            bad.append(f"kept + dropped per step {total}, wanted {choices * blocks}")
        cap = -(-moe["capacity_factor"] * moe["top_k"] * g["seq_len"] // moe["experts"])
        if tokens.max() > cap * t["batch"]:
            bad.append(f"an expert took {tokens.max()} rows, more than capacity {cap} x {t['batch']} sequences")
        s = f["summary"].attrs
        imb = np.mean(tokens.max(axis=2) / tokens.mean(axis=2))
        if abs(s["expert_load_imbalance"] - imb) > 1e-9 * imb:
            bad.append(f"expert_load_imbalance {s['expert_load_imbalance']} vs {imb} from /moe/tokens_per_expert")
        if not (np.all(aux > 0) and np.all(np.isfinite(aux))):
            bad.append(f"aux loss {aux}")
        ep = int(f.attrs["ep_degree"])
        a2a = s["alltoall_bytes_sent_per_step"]
        if (a2a > 0) != (ep > 1):
            bad.append(f"all-to-all bytes per step {a2a} at ep.degree {ep}")
        for k in ("alltoall_s", "alltoall_share", "dropped_fraction", "expert_rank_load_imbalance"):
            if k not in s:
                bad.append(f"/summary/{k} missing")
for x in bad:
    print("FAILED:", x)
print(f"{len(bad)} failed" if bad else "ok")
sys.exit(1 if bad else 0)
