#!/usr/bin/python3
"""partrain-collectives' table, parsed as a user's script would: every row has the 13 columns of the header, the
`#wrong` column is a readable integer and 0, and the run ends with the verdict line and exit code 0.
(GCC 12.2 with -mavx512f once miscompiled a padded column into 16 fields; this is the test that would catch it.)

    check_collectives_table.py MPIEXEC NP BINARY [partrain-collectives arguments ...]
"""
import subprocess
import sys

HEADER = ["size", "count", "type", "algo", "time_min", "time_avg", "time_max", "algbw", "busbw", "mem", "%mem",
          "vs_vendor", "#wrong"]


def main():
    mpiexec, np, binary, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    run = subprocess.run([mpiexec, "-n", np, binary] + args, capture_output=True, text=True, timeout=300)
    out = run.stdout
    problems = []
    if run.returncode != 0:
        problems.append(f"exit code {run.returncode}: {run.stderr.strip()}")
    headers = [l for l in out.splitlines() if l.startswith("#") and "size" in l and "#wrong" in l]
    if len(headers) != 1 or headers[0].lstrip("#").split() != HEADER:
        problems.append(f"header is not {HEADER}: {headers}")
    rows = [l for l in out.splitlines() if l.strip() and not l.startswith("#")]
    if not rows:
        problems.append("no rows")
    for row in rows:
        fields = row.split()
        if len(fields) != len(HEADER):
            problems.append(f"{len(fields)} fields instead of {len(HEADER)}: {row!r}")
            continue
        if not fields[-1].isdigit():
            problems.append(f"#wrong is not a count: {row!r}")
        elif int(fields[-1]) != 0:
            problems.append(f"wrong elements: {row!r}")
        if not fields[0].isdigit() or not fields[1].isdigit():
            problems.append(f"size/count not integers: {row!r}")
        for f in fields[4:9]:
            float(f)  # times and bandwidths are numbers
    if "# Wrong elements: 0" not in out:
        problems.append("no '# Wrong elements: 0' verdict line")
    if problems:
        print(out)
        print("\n".join("FAILED: " + p for p in problems))
        sys.exit(1)
    print(f"ok: {len(rows)} rows of {len(HEADER)} columns, none wrong")


if __name__ == "__main__":
    main()
