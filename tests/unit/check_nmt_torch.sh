#!/usr/bin/env bash
# The NMT reference against PyTorch: partrain-ref's --dump-state (fp64 and fp32) rebuilt and run by
# benchmarks/peer/torch_nmt.py --check (loss and every gradient). Skipped (77) without python3-torch.
#   check_nmt_torch.sh REPO PARTRAIN_REF
set -u
repo=$1; ref=$2
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "python3-torch is not installed (scripts/install-deps --peer): skipped"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
small=(-i "$repo/inputs/ref_nmt.toml" --set model.nmt.vocab=64 --set model.nmt.embed=32 --set model.nmt.hidden=32
       --set model.nmt.enc_layers=3 --set model.nmt.dec_layers=3 --set model.nmt.min_len=3 --set model.nmt.max_len=9
       --set train.batch=6 --set train.steps=2)
rc=0
for dtype in fp64 fp32; do
  "$ref" "${small[@]}" --set model.dtype=$dtype --dump-state "$d/$dtype.h5" >/dev/null || { echo "partrain-ref failed"; exit 1; }
  /usr/bin/python3 "$repo/benchmarks/peer/torch_nmt.py" --check "$d/$dtype.h5" || rc=1
done
exit $rc
