#!/usr/bin/python3
"""What the update rule does to training, from partrain-ps result files (one per run; label = its mode, with the
straggler if any): the loss against the global step, the loss against wall time (when each step's last contribution
was computed, /ps/loss_wall_time_s), and the staleness of the applied updates (/ps/staleness_histogram).

    /usr/bin/python3 tools/analysis/plot_ps.py RESULT.h5 [RESULT.h5 ...] [--out ps.png]

Needs python3-h5py and python3-matplotlib.
"""

import numpy as np

from tool_io import fail, open_h5, parser, save  # noqa: E402

DATASETS = ["steps/loss", "ps/loss_wall_time_s", "ps/staleness_histogram"]
ATTRS = ["ps_servers", "ps_workers"]


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


def read(path):
    """What is drawn of one partrain-ps result file: (label, steps, loss, wall time, staleness histogram)."""
    with open_h5("RESULT", path) as f:
        strategy = f.attrs.get("strategy")
        if strategy is None:
            fail("RESULT", path, "not a partrain result file (no strategy attribute)")
        if strategy != "ps":
            fail("RESULT", path, f"a result of {f.attrs.get('app', strategy)}, not of partrain-ps")
        missing = [f"/{k}" for k in DATASETS if k not in f] + [f"attribute {k}" for k in ATTRS if k not in f.attrs]
        if missing:
            fail("RESULT", path, f"not a complete partrain-ps result file (no {missing[0]})")
        try:
            loss = f["steps/loss"][()]
            first = int(f.attrs.get("ps_first_step", 0))
            steps = np.arange(first + 1, first + 1 + len(loss))
            return label(f, path), steps, loss, f["ps/loss_wall_time_s"][()], f["ps/staleness_histogram"][()]
        except (KeyError, ValueError, TypeError) as e:
            fail("RESULT", path, f"not a complete partrain-ps result file ({e})")


def main():
    ap = parser(__doc__)
    ap.add_argument("results", metavar="RESULT", nargs="+", help="a partrain-ps result file (HDF5), one per run")
    ap.add_argument("--out", metavar="PNG", default="ps.png",
                    help="the figure to write; its directory is created (default: %(default)s)")
    args = ap.parse_args()
    runs = [read(path) for path in args.results]

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.5))
    width = 0.8 / len(args.results)
    for i, (name, steps, loss, wall, hist) in enumerate(runs):
        a1.plot(steps, loss, label=name)
        a2.plot(wall, loss, ".-", label=name)
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
    save(fig, args.out, 110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
