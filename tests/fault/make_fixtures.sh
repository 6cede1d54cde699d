#!/usr/bin/env bash
# The files the bad-input matrix feeds the executables: make_fixtures.sh DIR MPIEXEC PARTRAIN_REF
# DIR/ck-other: checkpoints of a model no deck in inputs/ trains (an MLP 64-32-8), written by partrain-ref.
set -euo pipefail
dir=$1; mpiexec=$2; ref=$3
rm -rf "$dir/ck-other"
"$mpiexec" -n 1 "$ref" -i inputs/ref_mlp.toml --set 'model.mlp.widths=[64,32,8]' --set train.steps=2 \
  --set train.warmup=0 --checkpoint-dir "$dir/ck-other" --checkpoint-every 1 --output "$dir/ck-other.h5" --overwrite \
  > "$dir/ck-other.log"
ls "$dir"/ck-other/ckpt-1.h5 > /dev/null
