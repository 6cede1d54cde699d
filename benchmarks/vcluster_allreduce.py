#!/usr/bin/python3
"""partrain-collectives' allreduce on the virtual cluster (scripts/vcluster), 2 nodes x 1 and 2 nodes x 2 ranks, with
the wait policy forced to spin (what the detection chose at 2 ranks per node before it counted the whole machine) and
as detected: 3 interleaved repetitions, the median over them of each call's time (max over ranks), in microseconds.
Brings its own cluster up (name ptbnch, 10.253.0) and down. Run as root from the repository, after the build:
    /usr/bin/python3 benchmarks/vcluster_allreduce.py [BUILD_DIR]
"""
import collections
import os
import statistics
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
env = dict(os.environ, PARTRAIN_VCLUSTER_NAME="ptbnch", PARTRAIN_VCLUSTER_NET="10.253.0")
env.pop("PARTRAIN_WAIT", None)
subprocess.run(["scripts/vcluster", "up", "--nodes", "2"], env=env, check=True, stdout=subprocess.DEVNULL)
times = collections.defaultdict(list)
try:
    for rep in range(3):
        for ppn in (1, 2):
            for policy in ("spin", "detected"):
                e = dict(env, PARTRAIN_WAIT="spin") if policy == "spin" else env
                out = subprocess.run(["scripts/vcluster", "mpiexec", "-n", str(2 * ppn), "-ppn", str(ppn),
                                      f"{build}/collectives/partrain-collectives", "-o", "allreduce", "-a", "all",
                                      "-b", "64K", "-e", "16M", "-f", "16", "-n", "10", "-w", "3"],
                                     env=e, capture_output=True, text=True, timeout=900, check=True).stdout
                for line in out.splitlines():
                    f = line.split()
                    if len(f) >= 13 and f[0].isdigit():  # size count type algo min avg max ...
                        times[(f"2x{ppn}", f[3], int(f[0]), policy)].append(float(f[6]))
finally:
    subprocess.run(["scripts/vcluster", "down"], env=env)
print("layout\talgo\tbytes\tspin_us\tdetected_us")
for (layout, algo, size) in sorted({k[:3] for k in times}):
    spin, det = (statistics.median(times[(layout, algo, size, p)]) for p in ("spin", "detected"))
    print(f"{layout}\t{algo}\t{size}\t{spin:.1f}\t{det:.1f}")
