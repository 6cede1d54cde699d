#!/usr/bin/env bash
# A real SLURM run of a generated sweep: brings up a single-node SLURM cluster on localhost (munged, slurmctld,
# slurmd — DESIGN.md has the facts), submits a two-point sweep with sbatch through partrain-sweep --submit,
# waits for both jobs, checks their HDF5 results with partrain-compare, and takes the cluster down again.
#   slurm_sweep_test.sh REPO BUILD_DIR
# Skips (exit 77) when slurm-wlm is not installed or this is not root.
set -euo pipefail
repo=$1; build=$2; MPIEXEC=${3:-mpiexec}
# the environment the job scripts run in (threads, OpenBLAS's core type): the direct run below must match it bit for bit
source "$repo/scripts/env.sh"
if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null; then echo "slurm-wlm not installed: skipped"; exit 77; fi
if [ "$(id -u)" -ne 0 ]; then echo "not root: skipped"; exit 77; fi
# (getconf, not nproc: nproc honours OMP_NUM_THREADS, which scripts/env.sh sets to 1)
work=$(mktemp -d /tmp/partrain-slurm.XXXXXX)
export SLURM_CONF=$work/slurm.conf
started_munge=0
cleanup() {
  scontrol shutdown >/dev/null 2>&1 || true
  sleep 1
  [ -f "$work/slurmd.pid" ] && kill "$(cat "$work/slurmd.pid")" 2>/dev/null || true
  [ -f "$work/slurmctld.pid" ] && kill "$(cat "$work/slurmctld.pid")" 2>/dev/null || true
  # only the munged this test started (by its pid file): a virtual cluster's munged of its own may be running
  [ "$started_munge" = 1 ] && [ -f /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
pkill -f "slurmctld -f /tmp/partrain-slurm" 2>/dev/null || true   # leftovers of an interrupted run
pkill -f "slurmd -f /tmp/partrain-slurm" 2>/dev/null || true
mkdir -p "$work/state" "$work/spool"
cat > "$SLURM_CONF" <<CONF
ClusterName=partrain
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(getconf _NPROCESSORS_ONLN) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
# the machine's munge, asked through its default socket: a munged process alone proves nothing (scripts/vcluster's
# runs on a socket of its own, and an exited one lingers as a zombie where nothing reaps it)
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  [ -f /etc/munge/munge.key ] || (mungekey -c 2>/dev/null || create-munge-key -f)
  runuser -u munge -- munged 2>/dev/null || munged --force
  started_munge=1
fi
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 1 150); do  # polls every 0.2 s: a second's granularity cost this test seconds of waiting
  sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix" && break
  sleep 0.2
done
sinfo || { cat "$work"/slurmctld.log; exit 1; }

cd "$repo"
out=$work/sweep
cat > "$work/slurm_test.toml" <<SWEEP
app = "partrain-dp"
deck = "inputs/dp_gpt_small.toml"
kind = "weak"
ranks = [1, 2]
ranks_per_node = 2
time_limit = "00:05:00"

[set]
"train.steps" = 4
"train.warmup" = 1
"model.gpt.layers" = 1
"model.gpt.seq_len" = 32

[weak]
"train.batch" = 2

[slurm]
partition = "debug"
account = "CHANGE_ME_account"
SWEEP
"$build/tools/partrain-sweep" "$work/slurm_test.toml" --scheduler slurm --out "$out" --build "$build" --submit
ids=$(tail -n +2 "$out/jobs.tsv" | cut -f3 | paste -sd,)
echo "waiting for jobs $ids"
for _ in $(seq 1 600); do
  [ -z "$(squeue -h -j "$ids" 2>/dev/null)" ] && break
  sleep 0.2
done
if [ -n "$(squeue -h -j "$ids" 2>/dev/null)" ]; then
  echo "jobs still queued after 120 s:"; squeue -j "$ids" -o "%i %T %r"; exit 1
fi
sacct -j "$ids" >/dev/null 2>&1 || true
for f in "$out"/logs/*.log; do echo "== $f"; tail -3 "$f"; done
n=$(ls "$out"/results/*.h5 2>/dev/null | wc -l)
[ "$n" -eq 2 ] || { echo "expected 2 result files, found $n"; cat "$work"/slurmd.log | tail -20; exit 1; }
"$build/tools/partrain-compare" "$out/results"
# every result records its SLURM job id
for f in "$out"/results/*.h5; do
  h5dump -a job_id "$f" | grep -qE '"[0-9]+"' || { echo "$f has no job id"; exit 1; }
done
echo "slurm sweep: ok"

# A requeued job finishes as an uninterrupted run does: a requeue = true sweep point (checkpoints every 2 steps, slow
# steps so that there is time), requeued with scontrol mid-run, resumes from its checkpoint; the final loss equals a
# direct run's and the result lists both attempts.
rq=$work/requeue
cat > "$work/requeue.toml" <<SWEEP
app = "partrain-dp"
deck = "inputs/dp_mlp.toml"
ranks = [2]
ranks_per_node = 2
time_limit = "00:05:00"
requeue = true
checkpoint_every = 2
args = ["--inject", "slow:rank=0:step=0:ms=250"]

[set]
"train.steps" = 24  # from its first checkpoint, 22 steps of 250 ms: time to act on it on a loaded machine
"train.warmup" = 1

[slurm]
partition = "debug"
SWEEP
"$build/tools/partrain-sweep" "$work/requeue.toml" --scheduler slurm --out "$rq" --build "$build" --submit
id=$(tail -n +2 "$rq/jobs.tsv" | cut -f3)
for _ in $(seq 1 120); do
  ls "$rq"/checkpoints/*/ckpt-*.h5 >/dev/null 2>&1 && break
  sleep 0.5
done
ls "$rq"/checkpoints/*/ckpt-*.h5 >/dev/null 2>&1 || { echo "no checkpoint appeared"; cat "$rq"/logs/*.log; exit 1; }
echo "requeueing job $id mid-run"
scontrol requeue "$id"
# A requeued job is held until a begin time ~2 minutes on (and the scheduler looks again only once a minute): once
# it is pending again, move its start to now. Moved while it is still completing, the hold comes afterwards.
for _ in $(seq 1 120); do
  [ "$(squeue -h -j "$id" -o %T 2>/dev/null)" = PENDING ] && break
  sleep 0.25
done
scontrol update jobid="$id" StartTime=now >/dev/null 2>&1 || true
for _ in $(seq 1 900); do
  [ -z "$(squeue -h -j "$id" 2>/dev/null)" ] && break
  sleep 0.2
done
[ -z "$(squeue -h -j "$id" 2>/dev/null)" ] || { echo "requeued job still queued"; squeue -j "$id" -o "%i %T %r"; exit 1; }
cat "$rq"/logs/*.log | grep -E "resume|stopped|checkpoint|requeue|self-check" || true
"$MPIEXEC" -n 2 "$build/miniapps/partrain-dp" --input inputs/dp_mlp.toml --set train.steps=24 --set train.warmup=1 \
  --output "$work/direct.h5" > /dev/null
/usr/bin/python3 - "$rq"/results/*.h5 "$work/direct.h5" <<'PY'
import sys
import h5py
r, d = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
attempts = r.attrs["attempts"].split(",")
assert r.attrs["complete"] == "true", "the requeued run's result is not complete"
assert len(attempts) >= 2 and attempts[0].endswith("#0") and attempts[-1].endswith("#1"), f"attempts {attempts}"
assert r["steps/loss"][-1] == d["steps/loss"][-1], f"final loss {r['steps/loss'][-1]} vs {d['steps/loss'][-1]}"
print("requeued run: attempts", attempts, "final loss", r["steps/loss"][-1], "= uninterrupted")
PY
echo "slurm requeue: ok"
