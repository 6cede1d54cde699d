#!/usr/bin/env bash
# The reference, checked against PyTorch: --dump-state files of partrain-ref (MLP, GPT in fp32 and fp64, NMT) and of
# every mini-app (dp, tp, pp, zero stage 3, nmt at k = 2, the mixture of experts in ref and ep, the sparse MLP in ref
# and the hybrid parameter server) are rebuilt in PyTorch from their parameters and their loss
# and gradients recomputed in float64 (benchmarks/peer/torch_check.py); a dump with one gradient perturbed by 1%
# must fail. Mixed precision: partrain-ref's GPT in bf16 and fp16 and its MLP in bf16 against the exact values of their
# rounded weights within sqrt(n)·u (docs/precision.md), beside torch.autocast, and against partrain's own fp32 dump of
# the same step; a bf16 gradient perturbed by 5% must fail too. Skipped without python3-torch.
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
# perturb DUMP TENSOR FACTOR: a copy of DUMP with gradient TENSOR multiplied by FACTOR (checked together below, one
# PyTorch start: each must fail naming its tensor)
perturbed=()
perturb() {
  local bad="$d/bad_$(basename "$1")"
  /usr/bin/python3 -c 'import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    g = f["grads/" + sys.argv[3]]
    g[...] = g[()] * float(sys.argv[4])' "$1" "$bad" "$2" "$3"
  perturbed+=("$bad:$2")
}
dump ref_mlp 1 partrain-ref -i inputs/ref_mlp.toml --set train.steps=2 --set 'model.mlp.widths=[64,128,10]'
dump ref_gpt 1 partrain-ref -i inputs/ref_gpt_small.toml "${G[@]}"
dump ref_gpt_fp64 1 partrain-ref -i inputs/ref_gpt_small.toml "${G[@]}" --set model.dtype=fp64
dump ref_mlp_bf16 1 partrain-ref -i inputs/ref_mlp.toml --set train.steps=2 --set 'model.mlp.widths=[64,128,10]' --set train.precision=bf16
dump ref_nmt 1 partrain-ref -i inputs/ref_nmt.toml --set train.steps=1 --set train.batch=4
dump dp 2 partrain-dp -i inputs/dp_gpt_small.toml "${G[@]}"
dump tp 2 partrain-tp -i inputs/tp_gpt_small.toml "${G[@]}"
dump pp 2 partrain-pp -i inputs/pp_gpt_small.toml "${G[@]}"
dump zero3 2 partrain-zero -i inputs/zero_gpt_small.toml "${G[@]}" --set zero.stage=3
dump nmt_k2 2 partrain-nmt -i inputs/nmt_small.toml --set nmt.model_parallel=2 --set train.steps=2
# the embedding-bag model (torch's EmbeddingBag, mode "sum"): the reference, and the hybrid parameter server's
# gathered tables and dense layers after an AdaGrad step
S=(--set model.sparse_mlp.rows=500 --set train.steps=2)
dump ref_sparse 1 partrain-ref -i inputs/sparse_mlp.toml "${S[@]}"
dump ref_sparse_fp64 1 partrain-ref -i inputs/sparse_mlp.toml "${S[@]}" --set model.dtype=fp64
dump ps_hybrid 4 partrain-ps -i inputs/sparse_mlp.toml "${S[@]}" --set ps.hybrid=true --set ps.servers=2
# the mixture of experts (a capacity that drops choices, the load-balancing loss): top-2 in partrain-ref, top-1 spread
# over 2 ranks by partrain-ep
M=(--set model.gpt.moe.every=1 --set model.gpt.moe.experts=4 --set model.gpt.moe.capacity_factor=0.5)
dump ref_moe 1 partrain-ref -i inputs/ref_gpt_small.toml "${G[@]}" "${M[@]}" --set model.gpt.moe.top_k=2
dump ep_k1 2 partrain-ep -i inputs/ep_gpt_moe.toml "${G[@]}" "${M[@]}" --set model.gpt.moe.top_k=1
/usr/bin/python3 benchmarks/peer/torch_check.py "${dumps[@]}" || fails=$((fails + 1))
# bf16 and fp16 GPT against the exact values and partrain's fp32 dump of the same first step (train.steps = 1: the
# dump is taken before any update, so the three runs hold the same master weights)
G1=(--set model.gpt.layers=2 --set model.gpt.seq_len=32 --set train.steps=1)
for p in fp32 bf16 fp16; do
  "$B/partrain-ref" -i inputs/ref_gpt_small.toml "${G1[@]}" --set train.precision=$p --dump-state "$d/gpt_$p.h5" > "$d/gpt_$p.log" 2>&1 \
    || { echo "FAILED: the $p GPT did not run"; tail -5 "$d/gpt_$p.log"; fails=$((fails + 1)); }
done
/usr/bin/python3 benchmarks/peer/torch_check.py "$d/gpt_bf16.h5" "$d/gpt_fp16.h5" --fp32 "$d/gpt_fp32.h5" || fails=$((fails + 1))
perturb "$d/gpt_bf16.h5" blocks.0.attn.proj.weight 1.05
perturb "$d/dp.h5" blocks.1.mlp.fc.weight 1.01
perturb "$d/ep_k1.h5" blocks.0.moe.router.weight 1.01
if /usr/bin/python3 benchmarks/peer/torch_check.py "${perturbed[@]%%:*}" > "$d/bad.log" 2>&1; then
  echo "FAILED: perturbed gradients passed"; fails=$((fails + 1))
else
  for p in "${perturbed[@]}"; do
    f=${p%%:*} t=${p#*:}
    grep -q "^torch_check: $f: .*FAILED $t" "$d/bad.log" && echo "$t perturbed in $(basename "$f") is caught: ok" \
      || { echo "FAILED: $t perturbed in $(basename "$f") not caught"; cat "$d/bad.log"; fails=$((fails + 1)); }
  done
fi
[ $fails -eq 0 ] && echo "torch cross-check: ok"
exit $((fails > 0))
