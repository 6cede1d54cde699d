#!/usr/bin/env bash
# cuda_build: the whole tree configured and compiled against a Kokkos built with CUDA — PARTRAIN_KOKKOS_CUDA names its
# install prefix (scripts/build-gpu leaves it in PREFIX/kokkos). Skipped (77) where it is unset. Compiles and links
# only (no GPU needed), then checks what the split promises: every program that uses Kokkos holds device code
# (a .nv_fatbin section; cuobjdump, where installed, names the Kokkos build's architecture), partrain-sweep and
# partrain-compare none, and neither links the CUDA runtime or Kokkos. docs/gpu.md.
#   cuda_build_test.sh SOURCE_DIR
set -euo pipefail
src=$1
prefix=${PARTRAIN_KOKKOS_CUDA:-}
[ -n "$prefix" ] || { echo "PARTRAIN_KOKKOS_CUDA unset (a Kokkos CUDA prefix, scripts/build-gpu): skipped"; exit 77; }
cfg=$(ls "$prefix"/lib*/cmake/Kokkos/KokkosConfigCommon.cmake 2>/dev/null | head -1)
[ -n "$cfg" ] || { echo "PARTRAIN_KOKKOS_CUDA=$prefix: no Kokkos installed there"; exit 1; }
grep -q 'set(Kokkos_DEVICES.*CUDA' "$cfg" || { echo "PARTRAIN_KOKKOS_CUDA=$prefix: that Kokkos has no CUDA backend"; exit 1; }
arch=$(sed -n 's/^ *set(Kokkos_CUDA_ARCHITECTURES \([0-9]*\)).*/\1/p' "$cfg")
cuda=${CUDA_HOME:-/usr/local/cuda}
export PATH=$cuda/bin:$PATH
b=$(mktemp -d /tmp/partrain-cuda-build.XXXXXX)
trap 'rm -rf "$b"' EXIT
cmake -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=Release -DPARTRAIN_NATIVE=OFF -DCMAKE_PREFIX_PATH="$prefix" > "$b/configure.log" 2>&1 ||
  { cat "$b/configure.log"; exit 1; }
grep -E 'partrain: (MPI|CUDA build)' "$b/configure.log"
grep -q 'backends [A-Z,]*CUDA' "$b/configure.log" || { echo "the configure summary names no CUDA backend"; exit 1; }
cmake --build "$b" -j "$(nproc)" > "$b/build.log" 2>&1 || { grep -E 'error' -A3 "$b/build.log" | head -40; exit 1; }
echo "built: $(ls "$b"/miniapps/partrain-* "$b"/tools/partrain-* "$b"/collectives/partrain-collectives | wc -l) executables"
kokkos_exes=(miniapps/partrain-ref miniapps/partrain-dp miniapps/partrain-tp miniapps/partrain-pp miniapps/partrain-zero
             miniapps/partrain-ps miniapps/partrain-nmt collectives/partrain-collectives tools/partrain-calibrate
             tools/partrain-predict)
fatbin() { readelf -SW "$1" | grep -q '\.nv_fatbin'; }  # embedded device code
for exe in "${kokkos_exes[@]}"; do
  fatbin "$b/$exe" || { echo "$exe: no device code (.nv_fatbin)"; exit 1; }
  if command -v cuobjdump >/dev/null; then  # the toolkit's own listing, where it is installed
    cuobjdump --list-elf "$b/$exe" | grep -q "sm_${arch}" || { echo "$exe: no sm_${arch} device code"; exit 1; }
  fi
done
grep -q -- "-arch=sm_${arch}" "$b/miniapps/CMakeFiles/partrain-dp.dir/flags.make" ||
  { echo "partrain-dp was not compiled for sm_${arch}"; exit 1; }
echo "device code in every mini-app, partrain-collectives, -calibrate and -predict, compiled for sm_${arch}"
for exe in tools/partrain-sweep tools/partrain-compare; do
  if fatbin "$b/$exe" || ldd "$b/$exe" | grep -qE 'libcudart|libkokkos'; then
    echo "$exe: host-only, but it holds device code or links CUDA or Kokkos"; exit 1
  fi
done
echo "partrain-sweep and partrain-compare: host code only"
