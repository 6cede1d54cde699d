#!/usr/bin/env bash
# How far the performance model is from the measurement (docs/model.md, the error table): every
# mini-app at its default deck on 1 to 4 ranks, twice, with --profile, then partrain-compare's error column
# summarised per mini-app (median |error|). About 5 minutes on 2 cores; run it on a quiet machine.
#   benchmarks/perf_model_error.sh PROFILE [OUT_DIR]      (default OUT_DIR: results/runs/perf_error_<UTC time>)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: benchmarks/perf_model_error.sh PROFILE [OUT_DIR]" >&2; exit 2; }
P=$(realpath "$1"); O=${2:-results/runs/perf_error_$(date -u +%Y%m%dT%H%M%SZ)}
source scripts/env.sh
B=build/${PARTRAIN_PRESET:-release}/miniapps
mkdir -p "$O"
run() {
  local n=$1 a=$2 name=$3; shift 3
  mpiexec -n "$n" "$B/partrain-$a" "$@" --profile "$P" --output "$O/$name.h5" > "$O/$name.log" 2>&1 || echo "FAILED $name (see $O/$name.log)"
}
for rep in 1 2; do
  run 1 ref ref_gpt_$rep -i inputs/ref_gpt_small.toml
  run 1 ref ref_mlp_$rep -i inputs/ref_mlp.toml
  run 1 ref ref_nmt_$rep -i inputs/ref_nmt.toml
  for n in 1 2 4; do
    run $n dp dp_gpt_${n}_$rep -i inputs/dp_gpt_small.toml --set train.batch=$((8 * n))
    run $n dp dp_mlp_${n}_$rep -i inputs/dp_mlp.toml --set train.batch=$((64 * n))
  done
  run 2 tp tp_2_$rep -i inputs/tp_gpt_small.toml
  run 4 tp tp_4_$rep -i inputs/tp_gpt_small.toml --set train.batch=16
  run 4 tp tp_4sp_$rep -i inputs/tp_gpt_small.toml --set train.batch=16 --set tp.sequence_parallel=true
  for s in gpipe 1f1b zb; do run 2 pp pp_${s}_$rep -i inputs/pp_gpt_small.toml --set pp.schedule=$s --set pp.microbatches=8; done
  run 2 pp pp_inter_$rep -i inputs/pp_gpt_small.toml --set pp.schedule=interleaved --set pp.chunks=2 --set pp.microbatches=8
  run 4 pp pp_4_$rep -i inputs/pp_gpt_small.toml --set pp.degree=4 --set model.gpt.layers=8 --set pp.microbatches=8
  for st in 0 1 2 3; do run 2 zero zero_s${st}_$rep -i inputs/zero_gpt_small.toml --set zero.stage=$st; done
  run 4 zero zero_4_s3_$rep -i inputs/zero_gpt_small.toml --set zero.stage=3 --set train.batch=32
  run 2 nmt nmt_k2_$rep -i inputs/nmt_small.toml --set nmt.model_parallel=2
  run 2 nmt nmt_k1r2_$rep -i inputs/nmt_small.toml
  run 3 ps ps_bsp_$rep -i inputs/ps_mlp.toml
  run 3 ps ps_asp_$rep -i inputs/ps_mlp.toml --set ps.mode=asp
done
"build/${PARTRAIN_PRESET:-release}/tools/partrain-compare" "$O" --csv > "$O/compare.csv"
/usr/bin/python3 - "$O/compare.csv" <<'PY'
import csv, statistics, sys
by, every = {}, []
for r in csv.DictReader(open(sys.argv[1])):
    if r["prediction_error_pct"]:
        by.setdefault(r["app"], []).append(float(r["prediction_error_pct"]))
        every.append(abs(float(r["prediction_error_pct"])))
print("| mini-app | configurations | median |error| | range |")
for app, v in sorted(by.items()):
    print(f"| {app} | {len(v)} | {statistics.median(abs(x) for x in v):.1f}% | {min(v):+.1f}% … {max(v):+.1f}% |")
print(f"| all | {len(every)} | {statistics.median(every):.1f}% | |")
PY
echo "perf_model_error: results in $O"
