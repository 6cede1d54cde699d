#!/usr/bin/env python3
"""Check every mini-app page's deck-key tables against the program's own `--print-deck`.

    check_deck_tables.py --source SRC --build BUILD

A deck-key table is a Markdown table whose header is `| key | default | meaning |`; each row names one key in
backticks, in full (`dp.bucket_mib`), and its default in backticks as TOML (`25.0`, `"auto"`, `true`). For each
mini-app, `BUILD/miniapps/partrain-X --print-deck` (no deck: the defaults) prints the resolved deck as TOML; every
key of the sections that app's page documents (below) must be in the page's tables with the printed default (equal
as TOML values of the same kind), and every key in the tables must be one the program prints. Exit code 1 with one
line per difference.
"""
import argparse
import os
import re
import subprocess
import sys
import tomllib

# the page of each mini-app and the deck sections it documents (the keys shared by all apps are on ref.md; the
# pipeline's page has its own [tp] table because tp.degree defaults to 1 there)
PAGES = [  # (mini-app, page, the deck sections its tables document)
    ("ref", "docs/ref.md", ["model", "model.gpt", "model.gpt.moe", "model.mlp", "model.sparse_mlp", "data", "train"]),
    ("dp", "docs/dp.md", ["dp"]),
    ("tp", "docs/tp.md", ["tp"]),
    ("tp", "docs/cp.md", ["cp"]),
    ("pp", "docs/pp.md", ["pp", "tp", "ep"]),
    ("ep", "docs/ep.md", ["ep"]),
    ("zero", "docs/zero.md", ["zero"]),
    ("ps", "docs/ps.md", ["ps"]),
    ("nmt", "docs/nmt.md", ["model.nmt", "nmt"]),
]
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]*)`\s*\|")


def flatten(table, prefix=""):
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def table_rows(path):
    """{key: (default text, line number)} from the page's key | default | meaning tables."""
    rows, in_table, errors = {}, False, []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and [c.lower() for c in cells[:2]] == ["key", "default"]:
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or set(line.strip()) <= set("|-: "):
            continue
        m = ROW.match(line)
        if not m:
            errors.append(f"{path}:{n}: a deck-key row must be | `key` | `default` | meaning |: {line.strip()}")
            continue
        if m.group(1) in rows:
            errors.append(f"{path}:{n}: `{m.group(1)}` is listed twice")
        rows[m.group(1)] = (m.group(2), n)
    return rows, errors


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    a = ap.parse_args()
    bad = 0
    for app, page, sections in PAGES:
        exe = os.path.join(a.build, "miniapps", f"partrain-{app}")
        p = subprocess.run([exe, "--print-deck"], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{exe} --print-deck failed (exit {p.returncode}): {p.stderr.strip()}")
            bad += 1
            continue
        printed = flatten(tomllib.loads(p.stdout))
        path = os.path.join(a.source, page)
        rows, errors = table_rows(path)
        for e in errors:
            print(e)
        bad += len(errors)
        if not rows:
            print(f"{page}: no deck-key table (| key | default | meaning |)")
            bad += 1
            continue
        own = [k for k in printed if k.rsplit(".", 1)[0] in sections]
        for k in own:
            if k not in rows:
                print(f"{page}: `{k}` (default {printed[k]!r} in --print-deck) is missing from the table")
                bad += 1
        for k, (text, n) in rows.items():
            if k not in printed:
                print(f"{page}:{n}: `{k}` is not a key of partrain-{app} (--print-deck has no such key)")
                bad += 1
                continue
            try:
                doc = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                print(f"{page}:{n}: `{k}`'s default `{text}` is not a TOML value")
                bad += 1
                continue
            if not same(doc, printed[k]):
                print(f"{page}:{n}: `{k}` is documented with default `{text}`; --print-deck says {printed[k]!r}")
                bad += 1
        print(f"{page}: {len(rows)} keys checked against partrain-{app} --print-deck "
              f"({len(own)} in its sections {', '.join('[' + s + ']' for s in sections)})")
    print("deck tables:", "OK" if bad == 0 else f"{bad} difference(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
