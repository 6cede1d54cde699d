#!/usr/bin/python3
"""What the update rule does to training, from partrain-ps result files (one per run; label = its mode, with the
straggler if any): the loss against the global step, the loss against wall time (when each step's last contribution
was computed, /ps/loss_wall_time_s), and the staleness of the applied updates (/ps/staleness_histogram).

    /usr/bin/python3 tools/analysis/plot_ps.py RESULT.h5 [RESULT.h5 ...] [--out ps.png]

Needs python3-h5py and python3-matplotlib.
"""
import argparse
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402


def label(f, path):
    a = f.attrs
    text = str(a.get("ps_mode", path))
    if a.get("ps_mode") == "ssp":
        text += f" s={a['ps_staleness']}"
    if a.get("ps_mode") == "local":
        text += f" k={a['ps_local_steps']}"
    if str(a.get("ps_straggler", "")):
        text += f", straggler {a['ps_straggler']} ms"
    return text + f" ({a['ps_servers']}+{a['ps_workers']})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", default="ps.png")
    args = ap.parse_args()
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.5))
    width = 0.8 / len(args.results)
    for i, path in enumerate(args.results):
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            sys.exit(f"plot_ps.py: error: {path}: {e}")
        with f:
            if f.attrs.get("strategy") != "ps" or "ps/loss_wall_time_s" not in f:
                sys.exit(f"plot_ps.py: error: {path}: not a partrain-ps result file")
            loss = f["steps/loss"][()]
            first = int(f.attrs.get("ps_first_step", 0))
            steps = np.arange(first + 1, first + 1 + len(loss))
            name = label(f, path)
            a1.plot(steps, loss, label=name)
            a2.plot(f["ps/loss_wall_time_s"][()], loss, ".-", label=name)
            hist = f["ps/staleness_histogram"][()]
            a3.bar(np.arange(len(hist)) + i * width, hist / max(hist.sum(), 1), width=width, label=name)
    a1.set(xlabel="global step", ylabel="loss", title="loss against step")
    a2.set(xlabel="wall time since start [s]", ylabel="loss", title="loss against wall time")
    a3.set(xlabel="staleness [updates between read and apply]", ylabel="share of applied updates",
           title="staleness of applied updates")
    a3.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for a in (a1, a2, a3):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
