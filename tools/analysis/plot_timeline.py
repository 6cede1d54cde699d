#!/usr/bin/python3
"""The picture everyone draws of a pipeline, from what partrain-pp measured: one row per rank, each forward (F),
backward (B, or its input-gradient half under zero-bubble) and weight-gradient (W) action of one step as a box from
its start to its end, labelled with its microbatch; gaps are the bubble.

    /usr/bin/python3 tools/analysis/plot_timeline.py RESULT.h5 [--step K] [--out timeline.png]

Reads /timeline (results/README.md); the default step is the last one. Needs python3-h5py and python3-matplotlib.
"""


from tool_io import fail, open_h5, parser, save  # noqa: E402

COLOURS = {0: "#4c72b0", 1: "#55a868", 2: "#c44e52"}  # F, B, W
NAMES = {0: "F (forward)", 1: "B (backward / input gradient)", 2: "W (weight gradient)"}
FIELDS = ["rank", "step", "action", "microbatch", "model_chunk", "start_s", "end_s"]


def main():
    ap = parser(__doc__)
    ap.add_argument("result", metavar="RESULT", help="a partrain-pp result file (HDF5) with /timeline")
    ap.add_argument("--step", metavar="K", type=int, default=None,
                    help="the step to draw, as numbered in /timeline/step (default: the last one)")
    ap.add_argument("--out", metavar="PNG", default="timeline.png",
                    help="the figure to write; its directory is created (default: %(default)s)")
    args = ap.parse_args()
    with open_h5("RESULT", args.result) as f:
        if "timeline" not in f:
            app = f.attrs.get("app")
            fail("RESULT", args.result, f"no /timeline (a result of {app}, not of partrain-pp)" if app else
                 "no /timeline (not a partrain-pp result file)")
        try:
            tl = {k: f[f"timeline/{k}"][()] for k in FIELDS}
            a, s = f.attrs, f["summary"].attrs
            if len(tl["step"]) == 0:
                fail("RESULT", args.result, "its /timeline is empty")
            step = int(tl["step"].max()) if args.step is None else args.step
            title = (f"{a['app']} {a.get('schedule', '')}: p={int(a['pp'])}, m={int(s['microbatches'])}, "
                     f"v={int(s['chunks'])}, step {step}\nbubble {100 * s['bubble_fraction']:.1f}% measured, "
                     f"{100 * s['predicted_bubble_fraction']:.1f}% by formula")
        except (KeyError, ValueError, TypeError) as e:
            fail("RESULT", args.result, f"not a complete partrain-pp result file ({e})")
        ranks = sorted(set(int(r) for r in tl["rank"]))
    sel = tl["step"] == step
    if not sel.any():
        fail("--step", step, f"not in {args.result} (its steps: {int(tl['step'].min())} to {int(tl['step'].max())})")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max(tl["end_s"][sel]) * 1e3
    fig, ax = plt.subplots(figsize=(max(8, 0.25 * sel.sum() / len(ranks) + 4), 0.7 * len(ranks) + 1.6))
    seen = set()
    for i in range(len(tl["rank"])):
        if not sel[i]:
            continue
        r, act = int(tl["rank"][i]), int(tl["action"][i])
        x0, x1 = tl["start_s"][i] * 1e3, tl["end_s"][i] * 1e3
        label = NAMES[act] if act not in seen else None
        seen.add(act)
        ax.barh(r, x1 - x0, left=x0, height=0.8, color=COLOURS[act], edgecolor="white", linewidth=0.5, label=label)
        if (x1 - x0) > end / 60:
            ax.text((x0 + x1) / 2, r, str(int(tl["microbatch"][i])), ha="center", va="center", color="white", fontsize=7)
    ax.set_yticks(ranks)
    ax.set_yticklabels([f"rank {r}" for r in ranks])
    ax.invert_yaxis()
    ax.set_xlim(0, end * 1.01)
    ax.set_xlabel("ms from the start of the step")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
    fig.tight_layout()
    save(fig, args.out, 120)
    print("plot_timeline: wrote", args.out)


if __name__ == "__main__":
    main()
