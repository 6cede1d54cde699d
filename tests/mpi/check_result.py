#!/usr/bin/python3
"""Runs a training mini-app with --output and checks the result file with result_checks (schema, [S, R] series,
/summary recomputed from /steps/time_s, units and description on every dataset), and that a second run refuses to
overwrite it.

    check_result.py MPIEXEC NP BINARY APP STRATEGY [mini-app arguments ...]
"""
import os
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_checks import check_training_result  # noqa: E402

mpiexec, np_, exe, app, strategy = sys.argv[1:6]
args = sys.argv[6:]
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "r.h5")
    cmd = [mpiexec, "-n", np_, exe] + args + ["--output", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with h5py.File(out, "r") as f:
        failures = check_training_result(f, app, strategy, int(np_))
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 2 or "file exists" not in r.stderr:
        failures.append("a second run did not refuse to overwrite the result file")
for x in failures:
    print("FAILED:", x)
print(f"{len(failures)} failed" if failures else "ok")
sys.exit(1 if failures else 0)
