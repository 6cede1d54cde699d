#!/usr/bin/env bash
# partrain-collectives --output: the file exists only after a complete run and holds the schema, provenance and
# per-algorithm arrays (checked with h5dump from hdf5-tools).
set -euo pipefail
bin=$1; mpiexec=$2
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$mpiexec" -n 2 "$bin" -o allreduce -a all -b 1K -e 64K -f 8 -n 2 -w 1 --output "$d/c.h5" >/dev/null
h5dump -A "$d/c.h5" > "$d/attrs.txt"
for a in schema schema_version app strategy nranks git_commit hostnames mpi_version hdf5_version kokkos_version \
         blas compiler command_line config_toml created_utc copy_bandwidth_Bps; do
  grep -q "ATTRIBUTE \"$a\"" "$d/attrs.txt" || { echo "missing attribute $a"; exit 1; }
done
grep -q '"partrain.result"' "$d/attrs.txt" || { echo "wrong schema"; exit 1; }
for algo in ring recdbl tree vendor; do
  for ds in size_bytes time_min_s time_avg_s time_max_s time_s algbw_GBps busbw_GBps mem_busbw_GBps wrong; do
    h5dump -d "/collectives/$algo/$ds" "$d/c.h5" > /dev/null || { echo "missing /collectives/$algo/$ds"; exit 1; }
  done
done
# sizes 1K, 8K, 64K → three rows, none wrong
h5dump -A 0 -d /collectives/ring/size_bytes "$d/c.h5" | grep -q "1024, 8192, 65536" || { echo "wrong sizes"; exit 1; }
h5dump -A 0 -d /collectives/ring/wrong "$d/c.h5" | grep -q "0, 0, 0" || { echo "wrong elements"; exit 1; }
# the memory-bandwidth limit of allreduce: positive at every size
mem=$(h5dump -A 0 -y -w 0 -d /collectives/ring/mem_busbw_GBps "$d/c.h5" | sed -n '/DATA {/,/}/p' | grep -v '[{}]' | tr ',' '\n' | tr -d ' ')
[ "$(echo "$mem" | awk '$1 > 0' | wc -l)" = 3 ] || { echo "mem_busbw_GBps not positive: $mem"; exit 1; }
# and it refuses to overwrite
if "$mpiexec" -n 2 "$bin" -b 1K -e 1K --output "$d/c.h5" >/dev/null 2>&1; then echo "overwrote"; exit 1; fi
echo "ok"
