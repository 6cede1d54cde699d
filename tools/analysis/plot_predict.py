#!/usr/bin/python3
"""Draws partrain-predict's --csv table: the predicted step time split into compute, bubble, optimizer and exposed
communication (one bar per row), and the predicted scaling efficiency against the rank count.

    /usr/bin/python3 tools/analysis/plot_predict.py table.csv --out predict.png

Needs Debian's python3-matplotlib.
"""
import csv
import os

from tool_io import fail, parser, save  # noqa: E402

COLUMNS = ["ranks", "dp", "tp", "pp", "compute_s", "bubble_s", "optimizer_s", "comm_exposed_s", "efficiency"]


def read_table(path):
    """The rows of partrain-predict's --csv table, every number checked; anything else is an error."""
    if not os.path.exists(path):
        fail("TABLE", path, "no such file")
    if os.path.isdir(path):
        fail("TABLE", path, "a directory, not a file")
    foreign = "not partrain-predict's --csv table"
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except UnicodeDecodeError:
        fail("TABLE", path, f"{foreign} (not a text file)")
    except (OSError, csv.Error) as e:
        fail("TABLE", path, f"cannot read it ({getattr(e, 'strerror', None) or e})")
    if not header:
        fail("TABLE", path, f"{foreign} (an empty file)")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        fail("TABLE", path, f"{foreign} (no column {missing[0]}{more})")
    if not rows:
        fail("TABLE", path, "no rows (the header only)")
    for i, r in enumerate(rows):
        for c in COLUMNS:
            try:
                int(r[c]) if c in ("ranks", "dp", "tp", "pp") else float(r[c])
            except (TypeError, ValueError):
                fail("TABLE", path, f"{foreign} (line {i + 2}: {c} = {r[c]!r} is not a number)")
    return rows


def main():
    ap = parser(__doc__)
    ap.add_argument("table", metavar="TABLE", help="the CSV file partrain-predict --csv wrote")
    ap.add_argument("--out", metavar="PNG", default="predict.png",
                    help="the figure to write; its directory is created (default: %(default)s)")
    a = ap.parse_args()
    rows = read_table(a.table)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [int(r["ranks"]) for r in rows]
    parts = [("compute_s", "compute"), ("bubble_s", "bubble"), ("optimizer_s", "optimizer"), ("comm_exposed_s", "exposed comm")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    bottom = [0.0] * len(rows)
    x = range(len(rows))
    for key, label in parts:
        v = [1e3 * float(r[key]) for r in rows]
        ax1.bar(x, v, bottom=bottom, label=label)
        bottom = [b + y for b, y in zip(bottom, v)]
    ax1.set_xticks(list(x), [f"{r['ranks']}\n{r['dp']}×{r['tp']}×{r['pp']}" for r in rows])
    ax1.set_ylabel("predicted ms per step")
    ax1.legend()
    ax2.plot(n, [100 * float(r["efficiency"]) for r in rows], marker="o")
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel("ranks")
    ax2.set_ylabel("predicted efficiency (%)")
    ax2.set_ylim(0, 110)
    fig.tight_layout()
    save(fig, a.out, 110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
