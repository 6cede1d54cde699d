#!/usr/bin/env bash
# The PyTorch peer scripts never hang and leave nothing behind (docs/ref.md): torch_ddp.py picks a free
# rendezvous port (two runs at once both finish), a worker past --timeout ends the run with a message and a non-zero
# exit, and a caller killed with SIGKILL mid-run takes every process it started with it. Skipped without python3-torch.
#   test_peer_hygiene.sh REPO
set -u
repo=$1
cd "$repo/benchmarks/peer"
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "python3-torch not installed: skipped"; exit 77; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
fails=0
no() { echo "FAILED: $1"; fails=$((fails + 1)); }
timeout 120 /usr/bin/python3 torch_ddp.py --ranks 2 --steps 4 --warmup 1 --json > /tmp/peer_a.$$ 2>&1 &
timeout 120 /usr/bin/python3 torch_ddp.py --ranks 2 --steps 4 --warmup 1 --json > /tmp/peer_b.$$ 2>&1
wait
grep -q step_time_median_ms /tmp/peer_a.$$ && grep -q step_time_median_ms /tmp/peer_b.$$ || no "two runs at once: $(cat /tmp/peer_a.$$ /tmp/peer_b.$$)"
rm -f /tmp/peer_a.$$ /tmp/peer_b.$$
out=$(timeout 120 /usr/bin/python3 torch_ddp.py --ranks 2 --steps 1000 --timeout 1 2>&1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "torch_ddp.py: 2 ranks on port [0-9]*: worker exit codes" <<<"$out" || no "a hung worker: rc $rc, $out"
# Exactly the processes the caller started (its descendants, found while it lives) are checked afterwards: a pattern
# over the whole machine also matched other tests' PyTorch workers, and its clean-up killed them.
descendants() {  # every descendant of pid $1
  local kids; kids=$(pgrep -P "$1")
  for k in $kids; do echo "$k"; descendants "$k"; done
}
/usr/bin/python3 -c "
import sys; sys.path.insert(0, '.')
from peer_run import run
run([sys.executable, 'torch_ddp.py', '--ranks', '2', '--steps', '100000'])
" > /dev/null 2>&1 &
caller=$!
pids=""
for _ in $(seq 1 600); do  # until the two workers run: the caller's torch_ddp.py and its 2 workers (3 descendants)
  pids=$(descendants $caller)
  [ "$(wc -w <<<"$pids")" -ge 3 ] && break
  sleep 0.1
done
[ "$(wc -w <<<"$pids")" -ge 3 ] || no "the workers never started: $pids"
kill -9 $caller
wait $caller 2>/dev/null
alive() { local n=0; for p in $pids; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo $n; }
for _ in $(seq 1 300); do  # SIGKILL reaches the workers through their parents' deaths; a worker still importing
                           # torch when its parent went notices at its start: give it up to 30 s (a loaded machine)
  left=$(alive)
  [ "$left" -eq 0 ] && break
  sleep 0.1
done
[ "$left" -eq 0 ] || { no "$left processes outlived their killed caller: $(ps -o pid,args -p "$(tr ' \n' ',,' <<<"$pids")")"; kill -9 $pids 2>/dev/null; }
[ $fails -eq 0 ] && echo "peer hygiene: ok"
exit $((fails > 0))
