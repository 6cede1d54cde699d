#!/usr/bin/python3
"""A straggler shows in every rank's figures: `--inject slow:rank=1:step=1:ms=D` makes rank 1's compute D ms late in
every step from step 1 (it sleeps inside its timed step, before its forward). What that guarantees, whatever else
the machine runs: rank 1's busy time and step time are at least D; every other rank cannot end its step before
rank 1 has contributed to the step's collectives, so its step time is at least D less the skew of the ranks' exits
from the step's barrier, and its wait for the slowest rank is at least D less the difference of the two ranks' own
compute. The test asks for half of D in the median of the timed steps (D = 200 ms; a tiny model computes in ~1 ms),
and that nothing of it hides: the back-to-back time is at least the step time. Before the fix the sleep came before
the step's barrier: the step times did not move at all.

    check_straggler.py MPIEXEC BINDIR INPUTS
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

mpiexec, bindir, inputs = sys.argv[1:4]
D = 0.2
bad = []


def check(cond, what):
    if not cond:
        bad.append(what)
        print("FAILED:", what, flush=True)


tiny_gpt = ["--set", "model.gpt.layers=2", "--set", "model.gpt.seq_len=16", "--set", "model.gpt.channels=32",
            "--set", "model.gpt.vocab=64", "--set", "model.gpt.heads=2"]
cases = [("partrain-dp", 2, "dp_gpt_small.toml", tiny_gpt),
         ("partrain-zero", 2, "zero_gpt_small.toml", tiny_gpt + ["--set", "zero.stage=3"]),
         ("partrain-pp", 2, "pp_gpt_small.toml", tiny_gpt),
         ("partrain-tp", 2, "tp_gpt_small.toml", tiny_gpt),
         ("partrain-nmt", 2, "nmt_small.toml", ["--set", "nmt.model_parallel=2"])]
with tempfile.TemporaryDirectory() as d:
    for app, n, deck, extra in cases:
        out = os.path.join(d, app + ".h5")
        cmd = [mpiexec, "-n", str(n), os.path.join(bindir, app), "-i", os.path.join(inputs, deck), "--set",
               "train.steps=4", "--set", "train.warmup=1", "--inject", f"slow:rank=1:step=1:ms={D * 1e3:g}",
               "--output", out] + extra
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        if r.returncode != 0:
            check(False, f"{app}: exit code {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
            continue
        with h5py.File(out) as f:
            t, wall = f["steps/time_s"][1:], f["steps/wall_s"][1:]
            busy, wait = f["steps/phases/busy_s"][1:], f["steps/phases/wait_for_others_s"][1:]
            med = lambda a, r: float(np.median(a[:, r]))  # noqa: E731
            check(med(busy, 1) >= D and med(t, 1) >= D, f"{app}: rank 1's busy {med(busy, 1):.3f} s / step "
                  f"{med(t, 1):.3f} s below the injected {D} s")
            for rank in range(n):
                check(med(t, rank) >= D / 2, f"{app}: rank {rank}'s step time {med(t, rank):.3f} s does not show the "
                      f"straggler's {D} s")
                check(np.all(wall[:, rank] >= t[:, rank]), f"{app}: rank {rank}'s back-to-back time below its step time")
            check(med(wait, 0) >= D / 2, f"{app}: rank 0 waited {med(wait, 0):.3f} s for the straggler, not about {D}")
            check(med(wait, 1) == 0, f"{app}: the straggler itself waited {med(wait, 1):.3f} s")
            s = f["summary"].attrs
            check(s["wait_for_others_max_s"] >= D / 2 and s["step_time_min_s"] >= D / 2,
                  f"{app}: the summary hides the straggler: min step {s['step_time_min_s']}, max wait "
                  f"{s['wait_for_others_max_s']}")
        print(f"{app}: step times {np.median(t, axis=0).round(3)} s, waits {np.median(wait, axis=0).round(3)} s")
print("ok" if not bad else f"{len(bad)} failed")
sys.exit(1 if bad else 0)
