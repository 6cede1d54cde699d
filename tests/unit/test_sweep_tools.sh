#!/usr/bin/env bash
# partrain-sweep and partrain-compare end to end, without a scheduler: script generation for SLURM and PBS (checked
# for their directives), a local sweep (from another directory, into a new nested --out), --resume, a sweep of every
# mini-app that is built, compare in its three formats, and every bad input giving one clear line. Every sweep runs
# the build under test (--build).
#   test_sweep_tools.sh REPO BUILD MPIEXEC
set -uo pipefail
repo=$1; build=$2; mpiexec=${3:-mpiexec}
sweep=$build/tools/partrain-sweep; compare=$build/tools/partrain-compare
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
cd "$repo"
fail=0
ok() { echo "ok: $1"; }
no() { echo "FAILED: $1"; fail=1; }
expect_err() {  # expect_err REGEX cmd... : exit 2 and one line matching REGEX
  local re=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  if [ $rc -eq 2 ] && grep -qE "$re" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then ok "error: $re"; else no "expected exit 2 and /$re/, got $rc: $out"; fi
}

# SLURM and PBS scripts from the same sweep
"$sweep" inputs/sweeps/dp_gpt_weak.toml --scheduler slurm --out "$d/s" --build "$build" >/dev/null || no "slurm generation"
s=$d/s/jobs/dp_gpt_weak_r2_k0.sh
grep -q "^#SBATCH --ntasks=2$" "$s" && grep -q "^#SBATCH --nodes=1$" "$s" && grep -q "^#SBATCH --time=00:10:00$" "$s" \
  && grep -q "^##SBATCH --partition=CHANGE_ME_partition .*CHANGE ME" "$s" && grep -q "source .*scripts/env.sh" "$s" \
  && grep -q "mpiexec[.a-z]* -n 2 .*partrain-dp --input inputs/dp_gpt_small.toml .*--set train.batch=16 --output $d/s/results/dp_gpt_weak_r2_k0.h5" "$s" \
  && ok "slurm directives" || { no "slurm directives"; cat "$s"; }
"$sweep" inputs/sweeps/dp_gpt_weak.toml --scheduler pbs --out "$d/p" --build "$build" >/dev/null || no "pbs generation"
p=$d/p/jobs/dp_gpt_weak_r1_k0.sh
grep -q "^#PBS -l select=1:ncpus=1:mpiprocs=1:ompthreads=1$" "$p" && grep -q "^#PBS -l walltime=00:10:00$" "$p" \
  && grep -q "^##PBS -q CHANGE_ME_queue" "$p" && grep -q "^#PBS -N dp_gpt_weak_r1_k0$" "$p" \
  && grep -q "set train.batch=8 " "$p" && ok "pbs directives" || { no "pbs directives"; cat "$p"; }
bash -n "$s" && bash -n "$p" && ok "scripts parse" || no "scripts parse"
# requeue = true under PBS: rerunnable, stops requeue with qrerun, failures at most max_requeues times
cat > "$d/rq.toml" <<T
app = "partrain-dp"
deck = "inputs/dp_mlp.toml"
ranks = [2]
requeue = true
max_requeues = 2
T
"$sweep" "$d/rq.toml" --scheduler pbs --out "$d/rq" --build "$build" >/dev/null || no "requeue generation"
q=$d/rq/jobs/rq_r2_k0.sh
grep -q "^#PBS -r y$" "$q" && grep -q 'qrerun "$PBS_JOBID"' "$q" && grep -q "requeues_after_failure" "$q" \
  && grep -q '"$n" -lt 2' "$q" && grep -q -- "--checkpoint-dir $d/rq/checkpoints/rq_r2_k0" "$q" && bash -n "$q" \
  && ok "requeue script (pbs, max_requeues)" || { no "requeue script"; cat "$q"; }

# A local sweep, then compare it with itself in three formats
cat > "$d/tiny.toml" <<T
app = "partrain-dp"
deck = "inputs/dp_gpt_small.toml"
kind = "strong"
ranks = [1, 2]
ranks_per_node = 2
repetitions = 2
[set]
"train.steps" = 3
"train.warmup" = 1
"train.batch" = 2
"model.gpt.layers" = 1
"model.gpt.seq_len" = 16
T
# the sweep file lives outside the repository: its deck is found relative to the current directory's repository
# only because --build and cwd say nothing about it -> give it an absolute deck; run from /, into a nested new --out
sed -i "s#^deck = .*#deck = \"$repo/inputs/dp_gpt_small.toml\"#" "$d/tiny.toml"
(cd / && "$sweep" "$d/tiny.toml" --scheduler local --out "$d/l/nested" --build "$build" >/dev/null) \
  && [ "$(ls "$d"/l/nested/results/*.h5 | wc -l)" -eq 4 ] && ok "local sweep from /, nested --out, 4 results" || no "local sweep"
L=$d/l/nested
# a repository sweep file run from elsewhere: its relative deck resolves against the repository
(cd /tmp && "$sweep" "$repo/inputs/sweeps/dp_gpt_strong.toml" --scheduler slurm --out "$d/elsewhere" --build "$build" >/dev/null) \
  && grep -q "^cd $repo$" "$d/elsewhere/jobs/dp_gpt_strong_r1_k0.sh" && ok "sweep file resolved against its repository" \
  || { no "sweep from another directory"; cat "$d/elsewhere/jobs/dp_gpt_strong_r1_k0.sh"; }
# --resume: only the point without a result runs again; a user's edit to a script is kept
rm "$L/results/tiny_r2_k1.h5"; echo "# edited" >> "$L/jobs/tiny_r1_k0.sh"
out=$("$sweep" "$d/tiny.toml" --scheduler local --out "$L" --build "$build" --resume)
[ $? -eq 0 ] && grep -q "4 points, 1 without a result" <<<"$out" && [ -f "$L/results/tiny_r2_k1.h5" ] \
  && grep -q "# edited" "$L/jobs/tiny_r1_k0.sh" && ok "--resume runs what has no result" || { no "--resume"; echo "$out"; cat "$L"/logs/tiny_r2_k1.log; }

# Every mini-app that is built can be swept (a one-point local sweep each, on its own small deck)
for exe in "$build"/miniapps/partrain-*; do
  app=$(basename "$exe"); short=${app#partrain-}
  deck=$(ls inputs/${short}_gpt_small.toml inputs/${short}_*.toml 2>/dev/null | head -1)
  [ -n "$deck" ] || { no "$app has no input deck inputs/${short}_*.toml"; continue; }
  r=2; [ "$app" = partrain-ref ] && r=1
  printf 'app = "%s"\ndeck = "%s"\nranks = [%d]\nranks_per_node = 2\n[set]\n"train.steps" = 2\n"train.warmup" = 1\n' \
    "$app" "$repo/$deck" "$r" > "$d/every_$short.toml"
  if "$sweep" "$d/every_$short.toml" --scheduler local --out "$d/every/$short" --build "$build" >/dev/null \
     && ls "$d/every/$short"/results/*.h5 >/dev/null 2>&1; then ok "sweep of $app"; else no "sweep of $app"; cat "$d/every/$short"/logs/*.log; fi
done
out=$("$compare" "$L/results" "$L/results")
grep -qE "partrain-dp +dp +gpt.* 2 \[2\] .* 1\.00 .*2 repetitions" <<<"$out" && ok "compare text" || { no "compare text"; echo "$out"; }
"$compare" "$L/results" --csv > "$d/l.csv"
head -1 "$d/l.csv" | grep -q "^app,strategy,model,ranks,source,step_time_ms" && ok "compare csv" || no "compare csv"
# Efficiency against the smallest rank count (strong scaling: same batch at 1 and 2 ranks), recomputed from the result
# files' throughputs (median of the repetitions); the plot draws the same numbers (it reads compare's CSV).
/usr/bin/python3 tools/analysis/plot_scaling.py "$L/results" --out "$d/plots" --compare "$compare" --print > "$d/plot.txt" \
  || no "plot_scaling"
/usr/bin/python3 - "$d/l.csv" "$L/results" "$d/plot.txt" <<'PY' && ok "efficiency: p1*T1/(p*Tp) from the files, the same in compare and the plot" || no "efficiency"
import csv, glob, statistics, sys
import h5py
rows = {int(r["ranks"]): r for r in csv.DictReader(open(sys.argv[1]))}
tput = {}
for f in glob.glob(sys.argv[2] + "/*.h5"):
    with h5py.File(f) as h:
        tput.setdefault(int(h.attrs["nranks"]), []).append(h["summary"].attrs["tokens_per_s"])
want = statistics.median(tput[2]) / statistics.median(tput[1]) / 2
got = float(rows[2]["efficiency"])
assert rows[1]["scaling"] == "base" and float(rows[1]["efficiency"]) == 1.0, rows[1]
assert rows[2]["scaling"] == "strong" and rows[2]["base_ranks"] == "1" and abs(got - want) < 1e-5 * want, (got, want)
pts = {int(l.split("ranks=")[1].split()[0]): float(l.split("efficiency=")[1].split()[0])
       for l in open(sys.argv[3]) if l.startswith("point ")}
assert set(pts) == {1, 2} and abs(pts[2] - got) < 1e-5 * got, (pts, got)
PY
# a point's own settings ([points.N]) reach only its script
printf 'app = "partrain-dp"\ndeck = "inputs/dp_gpt_small.toml"\nranks = [1, 2]\nranks_per_node = 2\n[points.2]\n"dp.overlap" = false\n' > "$d/pt.toml"
"$sweep" "$d/pt.toml" --scheduler slurm --out "$d/pt" --build "$build" > /dev/null \
  && grep -q -- "--set dp.overlap=false" "$d/pt/jobs/pt_r2_k0.sh" && ! grep -q -- "dp.overlap" "$d/pt/jobs/pt_r1_k0.sh" \
  && ok "[points.2] settings in the 2-rank script only" || no "[points.N]"
"$compare" "$L/results" --markdown | grep -q "^| app | strategy" && ok "compare markdown" || no "compare markdown"
# decks that differ are not compared: a run with another learning rate
"$mpiexec" -n 1 "$build/miniapps/partrain-dp" -i inputs/dp_gpt_small.toml --set train.steps=3 --set train.warmup=1 \
  --set train.batch=2 --set model.gpt.layers=1 --set model.gpt.seq_len=16 --set train.lr=0.5 --output "$d/other.h5" >/dev/null
"$compare" "$L/results" "$d/other.h5" | grep -q "config differs" && ok "config differs" || no "config differs"

# Bad input
printf 'app = "partrain-dp"\ndeck = "inputs/dp_gpt_small.toml"\nranks = [2]\nranks_per_node = 2\nthreads = [1, 2]\n' > "$d/thr.toml"
"$sweep" "$d/thr.toml" --scheduler slurm --out "$d/thr" --build "$build" > /dev/null || no "threads sweep"
grep -q "^#SBATCH --cpus-per-task=2" "$d/thr/jobs/thr_r2_t2_k0.sh" && grep -q "^export PARTRAIN_THREADS=2" "$d/thr/jobs/thr_r2_t2_k0.sh" \
  && grep -q "^#SBATCH --cpus-per-task=1" "$d/thr/jobs/thr_r2_t1_k0.sh" && ok "threads: a sweep dimension in the scripts" || no "threads in the scripts"
"$sweep" "$d/thr.toml" --scheduler pbs --out "$d/thrp" --build "$build" > /dev/null || no "threads sweep (pbs)"
grep -q "select=1:ncpus=4:mpiprocs=2:ompthreads=2" "$d/thrp/jobs/thr_r2_t2_k0.sh" && ok "threads: PBS ncpus" || no "threads: PBS ncpus"
expect_err "error: .*t0.toml: threads = \\[ 0 \\]: must be a non-empty list" bash -c "printf 'app = \"partrain-dp\"\ndeck = \"inputs/dp_gpt_small.toml\"\nranks = [1]\nthreads = [0]\n' > $d/t0.toml; $sweep $d/t0.toml --out $d/t0o"
"$sweep" inputs/suites/quickstart.toml --scheduler slurm --out "$d/suite" --build "$build" > /dev/null || no "suite generation"
n=$(ls "$d"/suite/*/jobs/*.sh 2>/dev/null | wc -l)
[ "$n" -eq 13 ] && [ -d "$d/suite/tp_gpt_strong/jobs" ] && ok "suite: every listed sweep's scripts ($n)" || no "suite: $n scripts"
"$sweep" inputs/suites/quickstart_weak.toml --scheduler slurm --out "$d/suitew" --build "$build" > /dev/null || no "weak suite generation"
n=$(ls "$d"/suitew/*/jobs/*.sh 2>/dev/null | wc -l)
[ "$n" -eq 13 ] && grep -q "train.batch=8" "$d/suitew/pp_gpt_weak/jobs/pp_gpt_weak_r2_k0.sh" && ok "weak suite ($n)" || no "weak suite: $n scripts"
expect_err "error: .*suite_bad.toml: sweeps = \\[\\]: must list at least one sweep file" bash -c "printf 'sweeps = []\n' > $d/suite_bad.toml; $sweep $d/suite_bad.toml --out $d/sb"
expect_err "^partrain-sweep: error: .*bad.toml: colour = \"red\": unknown key" bash -c "printf 'app = \"partrain-dp\"\ndeck = \"inputs/dp_gpt_small.toml\"\nranks = [1]\ncolour = \"red\"\n' > $d/bad.toml; $sweep $d/bad.toml --out $d/x --build $build"
expect_err "error: ranks = 3: cannot be spread evenly over nodes of ranks_per_node = 2" bash -c "printf 'app = \"partrain-dp\"\ndeck = \"inputs/dp_gpt_small.toml\"\nranks = [3]\nranks_per_node = 2\n' > $d/r.toml; $sweep $d/r.toml --scheduler slurm --out $d/y"
expect_err "error: ranks = 4: needs 2 nodes; the local scheduler" bash -c "printf 'app = \"partrain-dp\"\ndeck = \"inputs/dp_gpt_small.toml\"\nranks = [4]\nranks_per_node = 2\n' > $d/r2.toml; $sweep $d/r2.toml --scheduler local --out $d/y2"
expect_err "error: --scheduler = lsf: must be slurm, pbs or local" "$sweep" inputs/sweeps/dp_gpt_weak.toml --scheduler lsf --out "$d/z"
expect_err "error: template = .*jobscripts/pbs.sh.tmpl: missing" bash -c "mkdir -p $d/repo/jobscripts $d/repo/inputs/sweeps && cp inputs/dp_gpt_small.toml $d/repo/inputs/ && cp inputs/sweeps/dp_gpt_weak.toml $d/repo/inputs/sweeps/ && $sweep $d/repo/inputs/sweeps/dp_gpt_weak.toml --scheduler pbs --out $d/t --build $build"
expect_err "error: --out = .*: holds the job scripts of an earlier sweep \(--resume continues it" "$sweep" inputs/sweeps/dp_gpt_weak.toml --scheduler slurm --out "$d/s" --build "$build"
expect_err "error: app = partrain-nosuch: partrain-nosuch is not built" bash -c "printf 'app = \"partrain-nosuch\"\ndeck = \"inputs/dp_gpt_small.toml\"\nranks = [1]\n' > $d/nosuch.toml; $sweep $d/nosuch.toml --out $d/ns"
expect_err "error: .*app = \"mpirun\": must name a partrain mini-app" bash -c "printf 'app = \"mpirun\"\nranks = [1]\n' > $d/app.toml; $sweep $d/app.toml --out $d/ap"
expect_err "error: .*time_limit = \"1 hour\": must be HH:MM:SS" bash -c "printf 'app = \"partrain-dp\"\ndeck = \"inputs/dp_gpt_small.toml\"\nranks = [1]\ntime_limit = \"1 hour\"\n' > $d/t.toml; $sweep $d/t.toml --out $d/t2"
echo "not hdf5" > "$d/foreign.h5"
expect_err "^partrain-compare: error: $d/foreign.h5: not an HDF5 file" "$compare" "$d/foreign.h5"
cp "$d/other.h5" "$d/v2.h5" && h5py_ok=1
/usr/bin/python3 - "$d/v2.h5" "$d/plain.h5" "$d/truncated.h5" "$d/other.h5" <<'PY'
import shutil, sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    f.attrs["schema_version"] = 2
with h5py.File(sys.argv[2], "w") as f:
    f["x"] = [1, 2, 3]
data = open(sys.argv[4], "rb").read()
open(sys.argv[3], "wb").write(data[: len(data) // 3])
PY
expect_err "error: $d/v2.h5: schema_version 2; this partrain-compare reads version 1" "$compare" "$d/v2.h5"
expect_err "error: $d/plain.h5: not a partrain result file \(no schema attribute\)" "$compare" "$d/plain.h5"
expect_err "error: $d/truncated.h5: " "$compare" "$d/truncated.h5"
expect_err "error: $d/empty: no result files" bash -c "mkdir -p $d/empty; $compare $d/empty"
exit $fail
