#!/usr/bin/env bash
# The virtual cluster's own promises (scripts/vcluster): up and down are idempotent; each host has its name and the
# hosts file; the addresses exist only inside the namespaces (none in this one, no route out); mpiexec places
# ranks per node; bad input is one line and exit 2 or 1 naming the value; down leaves nothing behind.
#   cluster_fixture_test.sh REPO
set -uo pipefail
repo=$1
export PARTRAIN_VCLUSTER_NAME=pttest PARTRAIN_VCLUSTER_NET=10.252.0
vc=$repo/scripts/vcluster
"$vc" check || exit 77
fails=0
ok() { echo "ok: $*"; }
no() { echo "FAIL: $*"; fails=$((fails + 1)); }
trap '"$vc" down' EXIT
"$vc" up --nodes 2 > /dev/null && ok "up" || no "up"
"$vc" up --nodes 2 > /dev/null && [ "$(ip netns list | grep -c '^pttest-')" -eq 3 ] && ok "up again: the same 3 namespaces" || no "idempotent up"
[ "$("$vc" exec node2 hostname)" = node2 ] && [ "$("$vc" exec head hostname)" = head ] && ok "host names" || no "host names"
"$vc" exec node1 getent hosts node2 | grep -q "^10.252.0.2 " && ok "hosts file" || no "hosts file"
! ip -o addr | grep -q "10.252.0." && ok "no cluster address in this namespace" || no "an address leaked into this namespace"
! "$vc" exec node1 ip route get 8.8.8.8 > /dev/null 2>&1 && ok "no route out of a node" || no "a node can route out"
out=$("$vc" mpiexec -n 4 hostname | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd,)
[ "$out" = "node1=2,node2=2" ] && ok "mpiexec -n 4: $out" || no "placement: $out"
out=$("$vc" mpiexec -n 3 -ppn 2 hostname | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd,)
[ "$out" = "node1=2,node2=1" ] && ok "mpiexec -n 3 -ppn 2: $out" || no "placement: $out"
err() {  # err REGEX cmd...: a failure with one line matching REGEX
  local re=$1; shift
  local o; o=$("$@" 2>&1); local rc=$?
  [ $rc -ne 0 ] && [ "$(wc -l <<<"$o")" -eq 1 ] && grep -qE "$re" <<<"$o" && ok "error: $o" || no "expected /$re/, got $rc: $o"
}
err "up: --nodes = '0': must be an integer in 1..64" "$vc" up --nodes 0
err "mpiexec: -n 5 with -ppn 1 needs 5 nodes; the cluster has 2" "$vc" mpiexec -n 5 -ppn 1 hostname
err "no host 'node9'" "$vc" exec node9 hostname
err "PARTRAIN_VCLUSTER_NAME = 'Bad'" env PARTRAIN_VCLUSTER_NAME=Bad "$vc" status
err "unknown command 'bogus'" "$vc" bogus
"$vc" down && "$vc" down && [ -z "$(ip netns list | grep '^pttest-')" ] && [ ! -e /run/partrain-vcluster-pttest ] \
  && ok "down twice: nothing left" || no "down"
[ "$fails" -eq 0 ] && echo "vcluster fixture: ok" || { echo "$fails failed"; exit 1; }
