#!/usr/bin/env bash
# Installed the way sites install software: `cmake --install` into a temporary prefix, then (1) a sweep run with the
# installed partrain-sweep from / (decks, templates and env.sh found under share/partrain, without the source tree),
# and (2) a project outside the tree that find_package(partrain)s and links partrain::partrain, built and run.
#   test_install.sh REPO BUILD_DIR MPIEXEC
set -euo pipefail
repo=$1; build=$2; mpiexec=$3
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cmake --install "$build" --prefix "$d/prefix" > "$d/install.log"
for f in bin/partrain-dp bin/partrain-sweep bin/partrain-predict share/partrain/inputs/dp_mlp.toml \
         share/partrain/jobscripts/slurm.sh.tmpl share/partrain/scripts/env.sh lib/cmake/partrain/partrainConfig.cmake \
         include/partrain/perf/collective_model.hpp include/partrain/collectives/mpi_communicator.hpp; do
  [ -e "$d/prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
printf 'app = "partrain-dp"\ndeck = "inputs/dp_mlp.toml"\nranks = [1, 2]\nranks_per_node = 2\n[set]\n"train.steps" = 3\n"train.warmup" = 1\n' > "$d/sweep.toml"
(cd / && "$d/prefix/bin/partrain-sweep" "$d/sweep.toml" --out "$d/sweep" --scheduler local > "$d/sweep.log" 2>&1) \
  || { cat "$d/sweep.log"; echo "the installed sweep failed"; exit 1; }
[ -s "$d/sweep/results/sweep_r1_k0.h5" ] && [ -s "$d/sweep/results/sweep_r2_k0.h5" ] || { echo "no results"; exit 1; }
grep -q "cd $d/prefix/share/partrain" "$d/sweep/jobs/sweep_r1_k0.sh" || { echo "the job does not run in share/partrain"; exit 1; }
"$d/prefix/bin/partrain-compare" "$d/sweep/results" > /dev/null
echo "installed sweep: ok"
cmake -S "$repo/tests/install/consumer" -B "$d/consumer" -DCMAKE_PREFIX_PATH="$d/prefix" -DCMAKE_BUILD_TYPE=Release \
  > "$d/consumer.log" 2>&1 || { cat "$d/consumer.log"; echo "find_package(partrain) failed"; exit 1; }
cmake --build "$d/consumer" -j2 >> "$d/consumer.log" 2>&1 || { tail -30 "$d/consumer.log"; echo "the consumer did not build"; exit 1; }
"$mpiexec" -n 2 "$d/consumer/consumer" | tee "$d/run.log"
grep -q "allreduce over 2 ranks right; ring's alpha terms 2" "$d/run.log"
echo "find_package(partrain): ok"
