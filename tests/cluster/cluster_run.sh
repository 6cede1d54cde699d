#!/usr/bin/env bash
# Runs one test on the virtual cluster (scripts/vcluster): brings up NODES nodes under the test suite's own name and
# network (pttest, 10.252.0: a cluster a user has up is left alone), runs the command with every @MPIEXEC@ replaced
# by the cluster's mpiexec (mpiexec on the head, proxies on the nodes), and takes the cluster down on any exit.
#   cluster_run.sh REPO NODES [VAR=VALUE...] -- COMMAND...
# Skips (exit 77) where the cluster cannot run: not root, no ip/unshare, no namespaces.
set -euo pipefail
repo=$1; nodes=$2; shift 2
while [ $# -gt 0 ] && [ "$1" != -- ]; do export "${1?}"; shift; done
[ "${1:-}" = -- ] && shift
export PARTRAIN_VCLUSTER_NAME=pttest PARTRAIN_VCLUSTER_NET=10.252.0
vc=$repo/scripts/vcluster
"$vc" check || exit 77
trap '"$vc" down' EXIT
"$vc" up --nodes "$nodes" > /dev/null
mpiexec_wrapper=/run/partrain-vcluster-pttest/mpiexec
cmd=()
for a in "$@"; do cmd+=("${a//@MPIEXEC@/$mpiexec_wrapper}"); done
"${cmd[@]}"
