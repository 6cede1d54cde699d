#!/usr/bin/python3
"""Scaling plots from partrain result files: for each scaling series (an app and model at several rank counts with
one configuration), speedup and parallel efficiency exactly as partrain-compare computes them, one line per source;
for each run, the per-rank breakdown of the median timed step into its phases.

    /usr/bin/python3 tools/analysis/plot_scaling.py RESULTS_DIR [MORE_DIRS ...] --out plots/

Efficiencies come from `partrain-compare SOURCE --csv` (one definition, tools/compare/scaling.hpp). Written: one
figure per series -> <out>/<name>_scaling.png, one figure per source comparing its strategies, and one breakdown per
run -> <out>/<name>_r<ranks>_breakdown.png. Files in a directory that are not partrain results (schema
"partrain.result", version 1) are reported and skipped; a file named on the command line must be one.

Run with /usr/bin/python3: needs python3-h5py and python3-matplotlib.
"""
import csv
import io
import os
import re
import shutil
import statistics
import subprocess
import sys

import h5py

from tool_io import PROG, fail, parser  # noqa: E402

PHASES = ["forward", "backward", "comm_exposed", "optimizer"]


def pyplot():
    """matplotlib.pyplot, imported once the input is known to be good (--help and errors need none)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def load(path):
    if not h5py.is_hdf5(path):
        raise ValueError("not an HDF5 file")
    with h5py.File(path, "r") as f:
        a = f.attrs
        if a.get("schema") != "partrain.result" or int(a.get("schema_version", 0)) != 1:
            raise ValueError("not a partrain result file of schema version 1")
        if "summary" not in f or "steps/time_s" not in f:
            return None  # e.g. a collectives benchmark: nothing to plot here
        warm = int(a.get("warmup_steps", 0))
        phases = {}
        for p in PHASES:
            key = f"steps/phases/{p}_s"
            if key in f:
                v = f[key][()][warm:]
                phases[p] = [statistics.median(v[:, r]) for r in range(v.shape[1])]
        return {"app": a["app"], "strategy": a["strategy"], "model": a["model"], "ranks": int(a["nranks"]),
                "phases": phases,
                "time": [statistics.median(f["steps/time_s"][()][warm:, r]) for r in range(int(a["nranks"]))],
                "hosts": str(a.get("hostnames", "?"))}


def source_label(index, src, hosts):
    """Legend text for a source: its number (as partrain-compare numbers them), the machine, the path's tail."""
    tail = os.path.join(*os.path.normpath(os.path.abspath(src)).split(os.sep)[-2:])
    return f"[{index}] {hosts}: {tail}"


def slug(s):
    return re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_")


def find_compare(given):
    """partrain-compare: --compare, else beside this script in the build tree or the installation, else on PATH."""
    if given:
        if not os.path.isfile(given) or not os.access(given, os.X_OK):
            fail("--compare", given, "no such executable file")
        return given
    here = os.path.dirname(os.path.abspath(__file__))
    preset = os.environ.get("PARTRAIN_PRESET", "release")
    for c in [os.path.join(here, "..", "..", "build", preset, "tools", "partrain-compare"),
              os.path.join(here, "..", "..", "..", "..", "bin", "partrain-compare"), shutil.which("partrain-compare")]:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    fail("--compare", "(not given)", f"partrain-compare is neither in build/{preset}/tools, nor in the installation's "
         "bin, nor on PATH (build it, or give --compare PATH)")


def scaling_series(compare, src):
    """{(app, model, baseline strategy): [(ranks, speedup, efficiency, kind)]} of one source, from partrain-compare's
    CSV: the efficiency it prints is the one drawn."""
    r = subprocess.run([compare, src, "--csv"], capture_output=True, text=True)
    if r.returncode != 0:
        why = "; ".join(line for line in r.stderr.strip().splitlines() if line) or f"exit code {r.returncode}"
        print(f"{PROG}: no scaling series of {src} (partrain-compare: {why})", file=sys.stderr)
        return {}
    series = {}
    for row in csv.DictReader(io.StringIO(r.stdout)):
        if not row["scaling"] or not row["efficiency"]:
            continue
        key = (row["app"], row["model"], row["base_strategy"])
        series.setdefault(key, []).append((int(row["ranks"]), float(row["speedup"]), float(row["efficiency"]), row["scaling"]))
    for pts in series.values():
        pts.sort()
    return {k: v for k, v in series.items() if len(v) >= 2}


def draw_scaling(path, title, lines, ranks, legend_size):
    """Speedup and efficiency side by side; `lines`: [(label, [(ranks, speedup, efficiency, kind)])]."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 4.3))
    for label, pts in lines:
        ax1.plot([q[0] for q in pts], [q[1] for q in pts], "o-", label=label)
        ax2.plot([q[0] for q in pts], [100 * q[2] for q in pts], "o-", label=label)
    ax1.plot(ranks, [x / ranks[0] for x in ranks], "k--", lw=0.8, label="ideal")
    ax1.set(xlabel="ranks", ylabel="speedup")
    ax2.set(xlabel="ranks", ylabel="parallel efficiency (%)", ylim=(0, 110))
    for ax in (ax1, ax2):  # rank counts as scaling papers draw them: log2 axis, integer ticks
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(x) for x in ranks])
        ax.minorticks_off()
    fig.suptitle(title, fontsize=9)
    ax1.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = parser(__doc__)
    ap.add_argument("sources", metavar="SOURCE", nargs="+",
                    help="a result file, or a directory searched for *.h5; one line per source")
    ap.add_argument("--out", metavar="DIR", required=True, help="directory for the PNG files (created)")
    ap.add_argument("--compare", metavar="PATH", help="the partrain-compare to read efficiencies from (default: the "
                    "one in build/$PARTRAIN_PRESET/tools, release when unset, else the installation's, else PATH's)")
    ap.add_argument("--print", action="store_true", help="also print every point drawn (source, app, model, ranks, "
                                                          "speedup, efficiency)")
    args = ap.parse_args()
    for src in args.sources:
        if not os.path.exists(src):
            fail("SOURCE", src, "no such file or directory")
    compare = find_compare(args.compare)
    runs = []
    for src in args.sources:
        if os.path.isfile(src):  # named on the command line: it must be a partrain result
            try:
                loaded = [load(src)]
            except Exception as e:
                fail("SOURCE", src, str(e))
        else:
            files = sorted(os.path.join(d, n) for d, _, ns in os.walk(src) for n in ns if n.endswith(".h5"))
            if not files:
                fail("SOURCE", src, "no result files (*.h5) in this directory")
            loaded = []
            for path in files:
                try:
                    loaded.append(load(path))
                except Exception as e:  # a foreign or corrupt file in a directory: say so, keep going
                    print(f"{PROG}: skipping {path}: {e}", file=sys.stderr)
        for r in loaded:
            if r:
                r["source"] = src
                runs.append(r)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        fail("--out", args.out, "not a directory (a file of that name exists)")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        fail("--out", args.out, f"cannot create the directory ({e.strerror or e})")
    written = []
    series = {src: scaling_series(compare, src) for src in args.sources}
    hosts = {r["source"]: r["hosts"] for r in runs}
    if args.print:
        for src, ss in series.items():
            for (app, model, base), pts in sorted(ss.items()):
                for q in pts:
                    print(f"point {src} {app} {model} ranks={q[0]} speedup={q[1]:.6g} efficiency={q[2]:.6g} {q[3]}")
    # One figure per (app, model, baseline): one line per source
    keys = sorted({k for ss in series.values() for k in ss})
    for app, model, base in keys:
        lines = [(f"{source_label(i + 1, src, hosts.get(src, '?'))} ({series[src][(app, model, base)][-1][3]})",
                  series[src][(app, model, base)]) for i, src in enumerate(args.sources) if (app, model, base) in series[src]]
        ranks = sorted({q[0] for _, pts in lines for q in pts})
        path = os.path.join(args.out, f"{slug(f'{app}_{model}_{base}')}_scaling.png")
        draw_scaling(path, f"{app} ({base})\n{model}", lines, ranks, 7)  # two short lines: never wider than the figure
        written.append(path)
    # Per run: the per-rank breakdown of the median timed step
    for r in runs:
        if not r["phases"]:
            continue
        name = slug(f"{r['app']}_{r['model']}")
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(max(4, 1 + 0.6 * r["ranks"]), 4))
        bottom = [0.0] * r["ranks"]
        for p in PHASES:
            if p in r["phases"]:
                v = [1e3 * x for x in r["phases"][p]]
                ax.bar(range(r["ranks"]), v, bottom=bottom, label=p)
                bottom = [b + x for b, x in zip(bottom, v)]
        ax.plot(range(r["ranks"]), [1e3 * t for t in r["time"]], "k_", markersize=20, label="step")
        ax.set(xlabel="rank", ylabel="ms per step (median)")
        ax.set_title(f"{r['model']}\n{r['ranks']} ranks", fontsize=8)  # wrapped to the (narrow) figure
        ax.set_xticks(range(r["ranks"]))
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(args.out, f"{name}_{slug(os.path.basename(os.path.normpath(r['source'])))}_r{r['ranks']}_breakdown.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    # One figure per source comparing its strategies
    for src, ss in series.items():
        if len(ss) < 2:
            continue
        lines = [(f"{app.replace('partrain-', '')} {base} {model}", pts) for (app, model, base), pts in sorted(ss.items())]
        ranks = sorted({q[0] for _, pts in lines for q in pts})
        path = os.path.join(args.out, f"strategies_{slug(os.path.basename(os.path.normpath(src)))}_scaling.png")
        draw_scaling(path, f"strategies compared: {src}", lines, ranks, 6)
        written.append(path)
    for p in written:
        print("plot_scaling: wrote", p)
    if not written:
        print("plot_scaling: nothing to plot", file=sys.stderr)


if __name__ == "__main__":
    main()
