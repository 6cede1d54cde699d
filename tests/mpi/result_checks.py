"""Checks every training mini-app's result file must pass (results/README.md), shared by the check_*_result.py
scripts: the root attributes, the [S, R] series (partrain-ps: [units, R], NaN where a rank has no k-th unit), that /summary's step times are recomputed exactly from
/steps/time_s without the warm-up steps (per-rank median over the timed steps, then min/median/max over ranks), and
that every dataset describes itself with `units` and `description` attributes.

    problems = check_training_result(h5py_file, app, strategy, nranks)    # a list of strings, empty when all is well
"""
import h5py
import numpy as np

ROOT_ATTRS = ["schema", "schema_version", "app", "strategy", "model", "nranks", "dp", "tp", "pp", "created_utc",
              "git_commit", "hostnames", "mpi_version", "hdf5_version", "kokkos_version", "execution_space", "device",
              "cuda_versions", "blas", "compiler",
              "command_line", "config_toml", "job_id", "warmup_steps"]


def median(v):
    v = np.sort(np.asarray(v, dtype=float))
    n = len(v)
    return float(v[n // 2]) if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def check_training_result(f, app, strategy, nranks):
    bad = []
    a = f.attrs
    for k in ROOT_ATTRS:
        if k not in a:
            bad.append(f"root attribute {k} missing")
    if bad:
        return bad
    if a["schema"] != "partrain.result" or int(a["schema_version"]) != 1:
        bad.append("schema name/version")
    if not a["kokkos_version"].endswith(f"({a['execution_space']})"):
        bad.append(f"execution_space {a['execution_space']} is not kokkos_version's {a['kokkos_version']}")
    if (a["execution_space"] == "Cuda") != (a["cuda_versions"] != "none") or not a["device"]:
        bad.append(f"device {a['device']!r} / cuda_versions {a['cuda_versions']!r} for {a['execution_space']}")
    if a["app"] != app or a["strategy"] != strategy:
        bad.append(f"app/strategy {a['app']}/{a['strategy']}, wanted {app}/{strategy}")
    ps = a["strategy"] == "ps"  # ranks at their own pace: rows are each rank's k-th unit of work, NaN-padded
    if ps:
        servers = int(a["ps_servers"]) + (1 if a["ps_scheduler"] == "true" else 0)
        if int(a["nranks"]) != nranks or int(a["dp"]) + servers != nranks:
            bad.append("nranks = dp (workers) + servers + scheduler")
    elif int(a["nranks"]) != nranks or int(a["dp"]) * int(a["tp"]) * int(a["pp"]) != nranks:
        bad.append("nranks = dp·tp·pp")
    t = f["steps/time_s"][()]
    steps = f["steps/loss"].shape[0]
    rows = t.shape[0] if ps else steps
    finite = np.isfinite(t)
    if t.shape != (rows, nranks) or not np.all(t[finite] > 0) or (not ps and not np.all(finite)):
        bad.append(f"steps/time_s is not [S={rows}, R={nranks}] positive: {t.shape}")
    for name, ds in f["steps/phases"].items():
        if ds.shape != (rows, nranks):
            bad.append(f"steps/phases/{name} is not [S, R]")
    # /summary recomputed from the series: warm-up excluded, median per rank, then over ranks (ranks with no
    # timed unit, NaN, are left out).
    w = int(a["warmup_steps"])
    if not 0 <= w < max(steps, 1) and not ps:
        bad.append(f"warmup_steps {w} outside [0, {steps})")
    per_rank = []
    for r in range(nranks):
        col = t[w:, r]
        col = col[np.isfinite(col)]
        if len(col):
            per_rank.append(median(col))
    s = f["summary"].attrs
    for key, want in [("step_time_median_s", median(per_rank)), ("step_time_min_s", min(per_rank)),
                      ("step_time_max_s", max(per_rank))]:
        if abs(s[key] - want) > 1e-12 * max(1.0, abs(want)):
            bad.append(f"summary {key} = {s[key]} but the timed steps of /steps/time_s give {want}")
    if not ps:
        # back to back: [S, R], positive, and at least the step itself on every rank
        wall = f["steps/wall_s"][()] if "steps/wall_s" in f else None
        if wall is None or wall.shape != (steps, nranks) or not np.all(wall > 0):
            bad.append("steps/wall_s is not [S, R] positive")
        else:
            want = median([median(wall[w:, r]) for r in range(nranks)])
            if abs(s["step_wall_median_s"] - want) > 1e-12 * max(1.0, want):
                bad.append(f"summary step_wall_median_s = {s['step_wall_median_s']}, the timed steps give {want}")
        # waiting for the slowest: exactly the slowest rank's busy time less this rank's, every step
        ph = f["steps/phases"]
        if "busy_s" not in ph or "wait_for_others_s" not in ph:
            bad.append("steps/phases has no busy_s or wait_for_others_s")
        else:
            busy, wait = ph["busy_s"][()], ph["wait_for_others_s"][()]
            want = busy.max(axis=1, keepdims=True) - busy
            if not np.allclose(wait, want, rtol=0, atol=1e-12) or not np.all(wait.min(axis=1) == 0):
                bad.append(f"wait_for_others_s is not the slowest busy time less each rank's: {wait} vs {want}")
            per = [median(wait[w:, r]) for r in range(nranks)]
            if abs(s["wait_for_others_median_s"] - median(per)) > 1e-12:
                bad.append("summary wait_for_others_median_s is not recomputed from the series")
    # every dataset says what it is
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            for attr in ("units", "description"):
                if attr not in obj.attrs or not str(obj.attrs[attr]):
                    bad.append(f"/{name} has no {attr} attribute")
    f.visititems(visit)
    return bad
