#!/usr/bin/python3
"""Scaling plots from partrain result files (run with /usr/bin/python3: needs python3-h5py, python3-matplotlib).

    /usr/bin/python3 tools/analysis/plot_scaling.py RESULTS_DIR [MORE_DIRS ...] --out plots/

For each (app, strategy, model) with several rank counts: speedup and parallel efficiency against the smallest
rank count (strong scaling when the global batch is unchanged, weak when it grows with the ranks, as
partrain-compare infers it), one line per source directory -> <out>/<name>_scaling.png. For each run: the per-rank
breakdown of the median timed step into its phases -> <out>/<name>_r<ranks>_breakdown.png.
Files that are not partrain results (schema "partrain.result", version 1) are reported and skipped.
"""
import argparse
import os
import re
import statistics
import sys
import tomllib

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PHASES = ["forward", "backward", "comm_exposed", "optimizer"]


def batch_of(config):
    m = re.search(r"^\[train\][^\[]*?^batch = (\d+)", config, re.M | re.S)
    return int(m.group(1)) if m else None


def load(path):
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
                "step": float(f["summary"].attrs["step_time_median_s"]), "batch": batch_of(a["config_toml"]),
                "config": scaling_config(a["config_toml"]), "phases": phases,
                "time": [statistics.median(f["steps/time_s"][()][warm:, r]) for r in range(int(a["nranks"]))],
                "hosts": str(a.get("hostnames", "?"))}


def source_label(index, src, hosts):
    """Legend text for a source: its number (as partrain-compare numbers them), the machine, the path's tail."""
    tail = os.path.join(*os.path.normpath(os.path.abspath(src)).split(os.sep)[-2:])
    return f"[{index}] {hosts}: {tail}"


def slug(s):
    return re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_")


def scaling_config(config_toml):
    """The configuration less what a scaling sweep changes with the rank count: the batch (weak scaling) and the
    parallel degrees that follow the ranks (as partrain-compare compares them)."""
    cfg = tomllib.loads(config_toml)
    cfg.get("train", {}).pop("batch", None)
    for sec, key in (("tp", "degree"), ("pp", "degree"), ("nmt", "model_parallel"), ("nmt", "replicas")):
        cfg.get(sec, {}).pop(key, None)
    return repr(sorted((k, repr(v)) for k, v in cfg.items()))


def scaling_points(mine):
    """(ranks, speedup, efficiency, kind) against the smallest rank count of one source's runs (sorted by ranks),
    strong where the batch is unchanged, weak where it grows with the ranks; runs of another configuration skipped."""
    base = mine[0]
    pts = []
    for r in mine:
        if r["config"] != base["config"] or not r["batch"] or not base["batch"]:
            continue
        p = r["ranks"] / base["ranks"]
        if r["batch"] == base["batch"]:
            kind, speedup = "strong", base["step"] / r["step"]
            eff = speedup / p
        elif r["batch"] * base["ranks"] == base["batch"] * r["ranks"]:
            kind, eff = "weak", base["step"] / r["step"]
            speedup = eff * p
        else:
            continue
        pts.append((r["ranks"], speedup, eff, kind))
    return pts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sources", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    runs = []
    for src in args.sources:
        files = [src] if os.path.isfile(src) else sorted(
            os.path.join(d, n) for d, _, ns in os.walk(src) for n in ns if n.endswith(".h5"))
        for path in files:
            try:
                r = load(path)
            except Exception as e:  # a foreign or corrupt file: say so, keep going
                print(f"plot_scaling: skipping {path}: {e}", file=sys.stderr)
                continue
            if r:
                r["source"] = src
                runs.append(r)
    written = []
    groups = {}
    for r in runs:
        groups.setdefault((r["app"], r["strategy"], r["model"]), []).append(r)
    for (app, strategy, model), rs in groups.items():
        name = slug(f"{app}_{model}")
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for src in [x for x in args.sources if any(r["source"] == x for r in rs)]:
            mine = sorted((r for r in rs if r["source"] == src), key=lambda r: r["ranks"])
            pts = scaling_points(mine)
            if len(pts) < 2:
                continue
            label = f"{source_label(args.sources.index(src) + 1, src, mine[0]['hosts'])} ({pts[-1][3]})"
            ax1.plot([q[0] for q in pts], [q[1] for q in pts], "o-", label=label)
            ax2.plot([q[0] for q in pts], [100 * q[2] for q in pts], "o-", label=label)
        if ax1.lines:
            ranks = sorted({r["ranks"] for r in rs})
            ax1.plot(ranks, [x / ranks[0] for x in ranks], "k--", lw=0.8, label="ideal")
            ax1.set(xlabel="ranks", ylabel="speedup")
            ax2.set(xlabel="ranks", ylabel="parallel efficiency (%)", ylim=(0, 110))
            for ax in (ax1, ax2):  # rank counts as scaling papers draw them: log2 axis, integer ticks
                ax.set_xscale("log", base=2)
                ax.set_xticks(ranks, [str(x) for x in ranks])
                ax.minorticks_off()
            fig.suptitle(f"{app}\n{model}", fontsize=9)  # two short lines: never wider than the figure
            ax1.legend(fontsize=7)
            fig.tight_layout()
            path = os.path.join(args.out, f"{name}_scaling.png")
            fig.savefig(path, dpi=110)
            written.append(path)
        plt.close(fig)
        for r in rs:
            if not r["phases"]:
                continue
            fig, ax = plt.subplots(figsize=(max(4, 1 + 0.6 * r["ranks"]), 4))
            bottom = [0.0] * r["ranks"]
            for p in PHASES:
                if p in r["phases"]:
                    v = [1e3 * x for x in r["phases"][p]]
                    ax.bar(range(r["ranks"]), v, bottom=bottom, label=p)
                    bottom = [b + x for b, x in zip(bottom, v)]
            ax.plot(range(r["ranks"]), [1e3 * t for t in r["time"]], "k_", markersize=20, label="step")
            ax.set(xlabel="rank", ylabel="ms per step (median)")
            ax.set_title(f"{model}\n{r['ranks']} ranks", fontsize=8)  # wrapped to the (narrow) figure
            ax.set_xticks(range(r["ranks"]))
            ax.legend(fontsize=7)
            fig.tight_layout()
            path = os.path.join(args.out, f"{name}_{slug(os.path.basename(os.path.normpath(r['source'])))}_r{r['ranks']}_breakdown.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    # One figure per source comparing its strategies: every (app, model) that scales over 2+ rank counts
    for src in args.sources:
        series = []
        for (app, strategy, model), rs in sorted(groups.items()):
            mine = sorted((r for r in rs if r["source"] == src), key=lambda r: r["ranks"])
            by_ranks = {}
            for q in scaling_points(mine) if mine else []:  # repetitions: the median per rank count
                by_ranks.setdefault(q[0], []).append(q)
            pts = [(n, statistics.median(x[1] for x in qs), statistics.median(x[2] for x in qs), qs[0][3])
                   for n, qs in sorted(by_ranks.items())]
            if len(pts) >= 2:
                series.append((f"{app.replace('partrain-', '')} {model}", pts))
        if len(series) < 2:
            continue
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
        ranks = sorted({q[0] for _, pts in series for q in pts})
        for label, pts in series:
            ax1.plot([q[0] for q in pts], [q[1] for q in pts], "o-", label=label)
            ax2.plot([q[0] for q in pts], [100 * q[2] for q in pts], "o-", label=label)
        ax1.plot(ranks, [x / ranks[0] for x in ranks], "k--", lw=0.8, label="ideal")
        ax1.set(xlabel="ranks", ylabel="speedup")
        ax2.set(xlabel="ranks", ylabel="parallel efficiency (%)", ylim=(0, 110))
        for ax in (ax1, ax2):
            ax.set_xscale("log", base=2)
            ax.set_xticks(ranks, [str(x) for x in ranks])
            ax.minorticks_off()
        ax1.legend(fontsize=6)
        fig.suptitle(f"strategies compared: {src}", fontsize=9)
        fig.tight_layout()
        path = os.path.join(args.out, f"strategies_{slug(os.path.basename(os.path.normpath(src)))}_scaling.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    for p in written:
        print("plot_scaling: wrote", p)
    if not written:
        print("plot_scaling: nothing to plot", file=sys.stderr)


if __name__ == "__main__":
    main()
