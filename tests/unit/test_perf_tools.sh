#!/usr/bin/env bash
# The performance model's tools end to end (docs/model.md): partrain-calibrate writes a profile
# (--quick), a mini-app run with --profile stores predicted_* beside its measurement, partrain-compare shows the
# predicted step and the error, partrain-predict tabulates a what-if over rank counts and ranks layouts (--search),
# and its CSV is drawn.
#   test_perf_tools.sh REPO BUILD_DIR MPIEXEC
set -u
repo=$1; build=$2; mpiexec=$3
cd "$repo"
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fails=0
ok() { echo "ok: $1"; }
no() { echo "FAILED: $1"; fails=$((fails + 1)); }

"$mpiexec" -n 2 "$build/tools/partrain-calibrate" --quick -o "$d/m.toml" > "$d/cal.log" 2>&1 || { cat "$d/cal.log"; no "calibrate"; }
grep -q "^gemm_large = " "$d/m.toml" && grep -q '^algo = "ring"' "$d/m.toml" && grep -q "^cores_per_node = " "$d/m.toml" \
  && ok "calibrate wrote a profile" || no "profile content"

"$mpiexec" -n 4 "$build/tools/partrain-calibrate" --quick --pretend-node-size 2 -o "$d/h.toml" > "$d/cal4.log" 2>&1 \
  || { cat "$d/cal4.log"; no "calibrate --pretend-node-size"; }
/usr/bin/python3 - "$d/h.toml" <<'PY' && ok "the hierarchical case: intra fits within pretend nodes, inter across" || no "pretend profile"
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))
fits = {(c["algo"], c["op"], c["scope"]): c for c in p["collective"]}
assert p["ranks_per_node"] == 2, p["ranks_per_node"]
assert ("ring", "allreduce", "intra") in fits and ("ring", "allreduce", "inter") in fits, sorted(fits)
assert ("shm", "allreduce", "intra") in fits and ("shm", "allreduce", "inter") not in fits, sorted(fits)
assert all(c["ranks"] == 2 for c in p["collective"]), "each group has 2 ranks"
PY

"$mpiexec" -n 2 "$build/miniapps/partrain-dp" -i inputs/dp_mlp.toml --set train.steps=6 --set dp.algorithm=ring --profile "$d/m.toml" \
  --output "$d/dp.h5" > "$d/dp.log" 2>&1 || { cat "$d/dp.log"; no "dp with --profile"; }
grep -qE "^# predicted step [0-9.]+ ms \(measured [0-9.]+, [-+][0-9.]+%\)" "$d/dp.log" && ok "predicted line" || no "predicted line"
/usr/bin/python3 - "$d/dp.h5" <<'PY' && ok "predicted_* in the result file" || no "predicted_* in the result file"
import sys, h5py
s = h5py.File(sys.argv[1])["summary"].attrs
parts = s["predicted_compute_s"] + s["predicted_bubble_s"] + s["predicted_optimizer_s"] + s["predicted_comm_exposed_s"]
assert s["predicted_step_time_s"] > 0 and abs(parts - s["predicted_step_time_s"]) < 1e-12, dict(s)
PY
# the run's prediction is partrain-predict's for the same deck, profile and layout (how close either is to the
# measurement depends on the machine's load: docs/model.md's error table, not a test); one algorithm named on both
# sides: "auto" is the trainer's choice in the run and the profile's fastest fit in partrain-predict
"$build/tools/partrain-predict" --deck inputs/dp_mlp.toml --set train.steps=6 --set dp.algorithm=ring --profile "$d/m.toml" --ranks 2 \
  --csv "$d/same.csv" > "$d/same.log" 2>&1 || { cat "$d/same.log"; no "predict the run's layout"; }
/usr/bin/python3 - "$d/dp.h5" "$d/same.csv" <<'PY' && ok "the run's prediction = partrain-predict's" || no "the run's prediction differs from partrain-predict's"
import csv, sys, h5py
s = h5py.File(sys.argv[1])["summary"].attrs
row = next(csv.DictReader(open(sys.argv[2])))
assert abs(float(row["step_s"]) / s["predicted_step_time_s"] - 1) < 1e-5, (row["step_s"], s["predicted_step_time_s"])
PY
PARTRAIN_PROFILE=/no/such.toml "$mpiexec" -n 1 "$build/miniapps/partrain-ref" -i inputs/ref_mlp.toml > "$d/env.log" 2>&1
[ $? -eq 2 ] && grep -q "error: PARTRAIN_PROFILE = /no/such.toml: cannot read the profile" "$d/env.log" && ok "bad \$PARTRAIN_PROFILE" || no "bad \$PARTRAIN_PROFILE: $(cat "$d/env.log")"

# partrain-collectives predicts every size too (the quick start's collectives row has its predicted column)
"$mpiexec" -n 2 "$build/collectives/partrain-collectives" -o allreduce -a ring -b 64K -e 1M -n 3 -w 1 --profile "$d/m.toml" \
  --output "$d/coll.h5" > "$d/coll.log" 2>&1 || { cat "$d/coll.log"; no "partrain-collectives --profile"; }
grep -qE "^# predicted \(ring, profile .*\) at 1048576 B: [0-9.]+ us per call, measured [0-9.]+" "$d/coll.log" \
  && "$build/tools/partrain-compare" "$d/coll.h5" --csv | /usr/bin/python3 -c "
import csv, sys
r = next(csv.DictReader(sys.stdin))
assert r['app'] == 'partrain-collectives' and float(r['predicted_ms']) > 0, r" \
  && ok "partrain-collectives: predicted beside measured, in compare" || no "collectives prediction: $(cat "$d/coll.log")"
"$build/tools/partrain-compare" "$d/dp.h5" --csv > "$d/cmp.csv" || no "compare"
/usr/bin/python3 - "$d/cmp.csv" <<'PY' && ok "compare's predicted and error columns" || no "compare columns"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
r = rows[0]
err = 100 * (float(r["predicted_ms"]) - float(r["step_time_ms"])) / float(r["step_time_ms"])
assert abs(err - float(r["prediction_error_pct"])) < 0.01, r
PY

p="$build/tools/partrain-predict"
"$p" --deck inputs/dp_gpt_small.toml --profile inputs/machines/h100_nvlink_ndr.toml --ranks 8,64 --scaling weak --csv "$d/t.csv" > "$d/pred.log" 2>&1 \
  || { cat "$d/pred.log"; no "predict"; }
[ "$(grep -cE '^ +(8|64) ' "$d/pred.log")" -eq 2 ] && ok "predict: one row per rank count" || no "predict rows: $(cat "$d/pred.log")"
/usr/bin/python3 - "$d/t.csv" <<'PY' && ok "predict: strong scaling across nodes costs efficiency" || no "predict efficiency"
import csv, sys
r = list(csv.DictReader(open(sys.argv[1])))
assert float(r[0]["efficiency"]) == 1.0 and 0 < float(r[1]["efficiency"]) < 1.0, r
assert float(r[1]["comm_exposed_s"]) > 0, r
PY
# mixed precision (a what-if): the half gemm rates and 2-byte messages make the same step faster, the same states
# (2 + 2 + 12 bytes per parameter against 4 + 4 + 8) and half the activations take less memory
wide="--set model.gpt.channels=2048 --set model.gpt.heads=16 --set model.gpt.seq_len=1024"
"$p" --deck inputs/tp_gpt_small.toml --profile inputs/machines/h100_nvlink_ndr.toml $wide --strategy tp --ranks 16 \
  --csv "$d/f32.csv" > /dev/null 2>&1 \
  && "$p" --deck inputs/tp_gpt_small.toml --profile inputs/machines/h100_nvlink_ndr.toml $wide --strategy tp --ranks 16 \
     --precision bf16 --csv "$d/bf16.csv" > "$d/bf16.log" 2>&1 || { cat "$d/bf16.log"; no "predict --precision"; }
grep -q "mixed precision (bf16)" "$d/bf16.log" && ok "predict: mixed precision named" || no "mixed precision header: $(head -1 "$d/bf16.log")"
/usr/bin/python3 - "$d/f32.csv" "$d/bf16.csv" <<'PY' && ok "predict: bf16 faster, messages half, less memory" || no "predict bf16"
import csv, sys
a, b = (next(csv.DictReader(open(f))) for f in sys.argv[1:3])
assert float(b["compute_s"]) < float(a["compute_s"]) / 2, (a, b)
assert 0.45 < float(b["comm_pure_s"]) / float(a["comm_pure_s"]) < 0.6, (a, b)
assert float(b["memory_bytes"]) < float(a["memory_bytes"]), (a, b)
PY
"$p" --deck inputs/pp_gpt_small.toml --profile inputs/machines/h100_nvlink_ndr.toml --strategy pp --set train.batch=64 --ranks 16 --search \
  --memory-limit-gib 80 > "$d/search.log" 2>&1 || { cat "$d/search.log"; no "search"; }
/usr/bin/python3 - "$d/search.log" <<'PY' && ok "search: layouts ranked by predicted step" || no "search ranking: $(cat "$d/search.log")"
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and l.split()[0] == "16"]
steps = [float(x[2]) for x in rows]
assert len(rows) >= 3 and steps == sorted(steps), rows
PY
# one layout, one price: --search's row for a layout is --layout's (a pp deck's 64×1×1 was dp in one, pp in the other)
h100=inputs/machines/h100_nvlink_ndr.toml
"$p" --deck inputs/pp_gpt_small.toml --profile $h100 --strategy pp --set train.batch=512 --ranks 64 --search > "$d/s64.log" 2>&1
"$p" --deck inputs/pp_gpt_small.toml --profile $h100 --strategy pp --set train.batch=512 --ranks 64 --layout 64x1x1 > "$d/l64.log" 2>&1
[ "$(grep -E '^ +64 +64×1×1 ' "$d/s64.log" | awk '{print $3, $8}')" = "$(grep -E '^ +64 +64×1×1 ' "$d/l64.log" | awk '{print $3, $8}')" ] \
  && [ -n "$(grep -E '^ +64 +64×1×1 ' "$d/l64.log")" ] && ok "predict: --search and --layout price 64x1x1 alike" \
  || no "search vs layout: $(cat "$d/s64.log" "$d/l64.log")"
# a layout partrain-pp refuses (8 samples per replica in 3 microbatches) is refused, one line, exit 2
out=$("$p" --deck inputs/pp_gpt_small.toml --profile $h100 --strategy pp --set pp.microbatches=3 --ranks 2 --layout _x1x2 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "error: --layout = _x1x2: fits none of the rank counts: train.batch / dp does not divide by pp.microbatches" <<<"$out" \
  && ok "predict: a layout partrain-pp refuses" || no "refused layout: rc $rc, $out"
"$p" --deck inputs/dp_gpt_small.toml --set train.batch=48 --profile $h100 --ranks 3:12 > "$d/r.log" 2>&1
[ "$(grep -cE '^ +(3|6|12) ' "$d/r.log")" -eq 3 ] && "$p" --help | grep -q "A, 2A, 4A" && ok "predict: --ranks A:B doubles from A, as its help says" \
  || no "--ranks 3:12: $(cat "$d/r.log")"
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  /usr/bin/python3 tools/analysis/plot_predict.py "$d/t.csv" --out "$d/t.png" > /dev/null && [ -s "$d/t.png" ] && ok "plot" || no "plot"
fi
[ $fails -eq 0 ] && echo "perf tools: ok" || echo "perf tools: $fails failed"
exit $((fails > 0))
