#!/usr/bin/env bash
# The reference, checked against PyTorch: --dump-state files of partrain-ref (MLP, GPT in fp32 and fp64, NMT) and of
# every mini-app (dp, tp, pp, zero stage 3, nmt at k = 2) are rebuilt in PyTorch from their parameters and their loss
# and gradients recomputed in float64 (benchmarks/peer/torch_check.py); a dump with one gradient perturbed by 1%
# must fail. Skipped without python3-torch.
#   check_torch_dumps.sh REPO BUILD_DIR MPIEXEC
set -u
repo=$1; build=$2; mpiexec=$3
cd "$repo"
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "python3-torch not installed: skipped"; exit 77; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
B=$build/miniapps
G=(--set model.gpt.layers=2 --set model.gpt.seq_len=32 --set train.steps=2)
fails=0
dumps=()
dump() {  # dump NAME NP APP ARGS... (checked together below: PyTorch loads once)
  local name=$1 np=$2 app=$3; shift 3
  "$mpiexec" -n "$np" "$B/$app" "$@" --dump-state "$d/$name.h5" > "$d/$name.log" 2>&1 || { echo "FAILED: $name did not run"; tail -5 "$d/$name.log"; fails=$((fails + 1)); return; }
  dumps+=("$d/$name.h5")
}
dump ref_mlp 1 partrain-ref -i inputs/ref_mlp.toml --set train.steps=2 --set 'model.mlp.widths=[64,128,10]'
dump ref_gpt 1 partrain-ref -i inputs/ref_gpt_small.toml "${G[@]}"
dump ref_gpt_fp64 1 partrain-ref -i inputs/ref_gpt_small.toml "${G[@]}" --set model.dtype=fp64
dump ref_nmt 1 partrain-ref -i inputs/ref_nmt.toml --set train.steps=1 --set train.batch=4
dump dp 2 partrain-dp -i inputs/dp_gpt_small.toml "${G[@]}"
dump tp 2 partrain-tp -i inputs/tp_gpt_small.toml "${G[@]}"
dump pp 2 partrain-pp -i inputs/pp_gpt_small.toml "${G[@]}"
dump zero3 2 partrain-zero -i inputs/zero_gpt_small.toml "${G[@]}" --set zero.stage=3
dump nmt_k2 2 partrain-nmt -i inputs/nmt_small.toml --set nmt.model_parallel=2 --set train.steps=2
/usr/bin/python3 benchmarks/peer/torch_check.py "${dumps[@]}" || fails=$((fails + 1))
/usr/bin/python3 - "$d/dp.h5" "$d/bad.h5" <<'PY'
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    g = f["grads/blocks.1.mlp.fc.weight"]
    g[...] = g[()] * 1.01
PY
if /usr/bin/python3 benchmarks/peer/torch_check.py "$d/bad.h5" > "$d/bad.log" 2>&1; then
  echo "FAILED: a gradient perturbed by 1% passed"; fails=$((fails + 1))
else
  grep -q "FAILED blocks.1.mlp.fc.weight" "$d/bad.log" && echo "a perturbed gradient is caught: ok" || { cat "$d/bad.log"; fails=$((fails + 1)); }
fi
[ $fails -eq 0 ] && echo "torch cross-check: ok"
exit $((fails > 0))
