#!/usr/bin/env bash
# A two-node SLURM on the virtual cluster (scripts/vcluster up --slurm: slurmctld on the head, one slurmd per node,
# a munged of its own): partrain-sweep's sbatch jobs run for real across the nodes with ranks_per_node honoured,
# and a whole node that dies mid-run (every process in its namespace, slurmd included, killed) costs only the steps
# since the last checkpoint: the job requeues itself, waits for the node to come back, resumes, and ends with an
# uninterrupted run's final loss.
#   cluster_slurm_test.sh REPO BUILD_DIR MPIEXEC
# Skips (exit 77) without root, namespaces or slurm-wlm.
set -euo pipefail
repo=$1; build=$2; MPIEXEC=$3
# the environment the job scripts run in (threads, OpenBLAS's core type): the direct run below must match it bit for bit
source "$repo/scripts/env.sh"
export PARTRAIN_VCLUSTER_NAME=pttest PARTRAIN_VCLUSTER_NET=10.252.0
vc=$repo/scripts/vcluster
"$vc" check || exit 77
command -v slurmctld >/dev/null && command -v munged >/dev/null || { echo "slurm-wlm or munge not installed: skipped"; exit 77; }
work=$(mktemp -d)
trap '"$vc" down; rm -rf "$work"' EXIT
"$vc" up --nodes 2 --slurm
cd "$repo"
slurm() { "$vc" slurm "$@"; }
wait_jobs() {  # job ids (comma-separated), seconds; polls every 0.2 s
  for _ in $(seq 1 $(($2 * 5))); do
    [ -z "$(slurm squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  echo "jobs $1 still queued after $2 s:"; slurm squeue -j "$1" -o "%i %T %r %N"; return 1
}

# 1. A suite: partrain-collectives at 2 nodes × 1 rank (ranks_per_node = 1) and partrain-dp at 1 node × 2 and
#    2 nodes × 2, submitted together.
cat > "$work/coll.toml" <<SWEEP
app = "partrain-collectives"
ranks = [2]
ranks_per_node = 1
time_limit = "00:05:00"
args = ["-o", "allreduce", "-a", "all", "-b", "1K", "-e", "1M", "-f", "32", "-n", "2", "-w", "1"]
[slurm]
partition = "debug"
SWEEP
cat > "$work/dp.toml" <<SWEEP
app = "partrain-dp"
deck = "inputs/dp_gpt_small.toml"
ranks = [2, 4]
ranks_per_node = 2
time_limit = "00:05:00"
[set]
"train.steps" = 4
"train.warmup" = 1
"model.gpt.layers" = 1
"model.gpt.seq_len" = 32
[slurm]
partition = "debug"
SWEEP
printf 'sweeps = ["%s", "%s"]\n' "$work/coll.toml" "$work/dp.toml" > "$work/suite.toml"
slurm "$build/tools/partrain-sweep" "$work/suite.toml" --scheduler slurm --out "$work/out" --build "$build" --submit
ids=$(tail -q -n +2 "$work"/out/*/jobs.tsv | cut -f3 | paste -sd,)
wait_jobs "$ids" 180
for f in "$work"/out/*/logs/*.log; do echo "== $f"; grep -E "^# partrain|ranks per host|FOM|result written|rror" "$f" || tail -n 5 "$f"; done
grep -q "2 ranks on node1,node2" "$work"/out/coll/logs/coll_r2_k0.log
grep -q "1 rank per host" "$work"/out/coll/logs/coll_r2_k0.log
grep -q "#SBATCH --nodes=2" "$work"/out/coll/jobs/coll_r2_k0.sh
grep -q "#SBATCH --ntasks-per-node=2" "$work"/out/dp/jobs/dp_r4_k0.sh
/usr/bin/python3 - "$work"/out/dp/results/dp_r2_k0.h5 "$work"/out/dp/results/dp_r4_k0.h5 "$work"/out/coll/results/coll_r2_k0.h5 <<'PY'
import sys
import h5py
def attrs(path):
    with h5py.File(path) as f:
        return dict(f.attrs)
r2, r4, c2 = (attrs(p) for p in sys.argv[1:4])
assert r2["hostnames"] == "node1", r2["hostnames"]
assert r4["hostnames"] == "node1,node2", r4["hostnames"]
assert c2["hostnames"] == "node1,node2", c2["hostnames"]
for a in (r2, r4, c2):
    assert a["job_id"].isdigit(), a["job_id"]
print("placement: dp r2 on", r2["hostnames"], "| dp r4 on", r4["hostnames"], "| collectives r2 on", c2["hostnames"])
PY
"$build/tools/partrain-compare" "$work/out/dp/results"
echo "two-node slurm sweep: ok"

# 2. A node dies mid-run. partrain-dp at 2 nodes × 1 rank, checkpoints every 2 steps, slow steps; once a checkpoint
#    exists, every process of node2 is killed. The job fails on node1 (its peer is gone; the watchdog bounds any
#    hang), requeues itself (max_requeues), waits for node2, and resumes from the checkpoint when node2's slurmd
#    is back; the final loss equals a direct run's, and the result lists both attempts.
cat > "$work/rq.toml" <<SWEEP
app = "partrain-dp"
deck = "inputs/dp_mlp.toml"
ranks = [2]
ranks_per_node = 1
time_limit = "00:05:00"
requeue = true
checkpoint_every = 2
max_requeues = 2
args = ["--inject", "slow:rank=0:step=0:ms=250", "--timeout", "20"]
[set]
"train.steps" = 24  # from its first checkpoint, 22 steps of 250 ms: time to act on it on a loaded machine
"train.warmup" = 1
[slurm]
partition = "debug"
SWEEP
slurm "$build/tools/partrain-sweep" "$work/rq.toml" --scheduler slurm --out "$work/rq" --build "$build" --submit
id=$(tail -n +2 "$work/rq/jobs.tsv" | cut -f3)
for _ in $(seq 1 240); do
  ls "$work"/rq/checkpoints/*/ckpt-*.h5 >/dev/null 2>&1 && break
  sleep 0.5
done
ls "$work"/rq/checkpoints/*/ckpt-*.h5 >/dev/null 2>&1 || { echo "no checkpoint appeared"; cat "$work"/rq/logs/*.log; exit 1; }
echo "killing every process of node2 while job $id runs"
"$vc" kill-node node2
for _ in $(seq 1 300); do  # the job leaves the running state: failed and requeued, or requeued by SLURM itself
  state=$(slurm squeue -h -j "$id" -o %T 2>/dev/null || true)
  [ "$state" != RUNNING ] && [ "$state" != COMPLETING ] && break
  sleep 0.2
done
echo "job $id is ${state:-gone} after the node failure; node2 comes back"
"$vc" restart-slurmd node2
for _ in $(seq 1 80); do  # a requeued job waits for its begin time: let it start once node2 is back
  slurm scontrol update jobid="$id" StartTime=now >/dev/null 2>&1 || true
  [ "$(slurm squeue -h -j "$id" -o %T 2>/dev/null || true)" = RUNNING ] && break
  [ -z "$(slurm squeue -h -j "$id" 2>/dev/null)" ] && break
  sleep 0.5
done
wait_jobs "$id" 180
grep -E "resum|failed|requeue|self-check|watchdog" "$work"/rq/logs/*.log || true
"$MPIEXEC" -n 2 "$build/miniapps/partrain-dp" --input inputs/dp_mlp.toml --set train.steps=24 --set train.warmup=1 \
  --output "$work/direct.h5" > /dev/null
/usr/bin/python3 - "$work"/rq/results/*.h5 "$work/direct.h5" <<'PY'
import sys
import h5py
r, d = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
attempts = r.attrs["attempts"].split(",")
assert r.attrs["complete"] == "true", "the resumed run's result is not complete"
assert len(attempts) >= 2, f"attempts {attempts}"
assert r.attrs["hostnames"] == "node1,node2", r.attrs["hostnames"]
assert r["steps/loss"][-1] == d["steps/loss"][-1], f"final loss {r['steps/loss'][-1]} vs {d['steps/loss'][-1]}"
print("after the node failure: attempts", attempts, "final loss", r["steps/loss"][-1], "= uninterrupted")
PY
echo "node failure and requeue: ok"
