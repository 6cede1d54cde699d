#!/usr/bin/python3
"""The Spack recipe (spack/packages/partrain/package.py) depends on exactly what cmake/PartrainDeps.cmake finds:
every find_package there maps to a depends_on, and every depends_on to a find_package (or a build tool), so the
recipe cannot drift from the build it describes.

    check_spack_recipe.py REPO
"""
import re
import sys

repo = sys.argv[1]
cmake = open(f"{repo}/cmake/PartrainDeps.cmake").read()
recipe = open(f"{repo}/spack/packages/partrain/package.py").read()

# CMake package → Spack package (the names differ only here)
to_spack = {"MPI": "mpi", "Kokkos": "kokkos", "KokkosKernels": "kokkos-kernels", "HDF5": "hdf5", "BLAS": "blas",
            "CLI11": "cli11", "tomlplusplus": "tomlplusplus", "GTest": "googletest", "benchmark": "benchmark",
            "CUDAToolkit": "cuda", "PkgConfig": None, "dnnl": "onednn"}
found = set(re.findall(r"find_package\((\w+)", cmake))
unknown = found - set(to_spack)
bad = []
if unknown:
    bad.append(f"find_package without a Spack name in this check: {sorted(unknown)}")
wanted = {to_spack[f] for f in found if to_spack.get(f)}
if "find_library(PARTRAIN_NCCL_LIBRARY" in cmake:
    wanted.add("nccl")
deps = set(re.findall(r'depends_on\("([\w-]+)', recipe)) - {"cmake"}
if "CudaPackage" in recipe:
    deps.add("cuda")  # CudaPackage brings the cuda dependency and variant
if wanted - deps:
    bad.append(f"found by CMake but not in the recipe: {sorted(wanted - deps)}")
if deps - wanted:
    bad.append(f"in the recipe but not found by CMake: {sorted(deps - wanted)}")
if 'depends_on("hdf5+mpi")' not in recipe:
    bad.append("HDF5 must be the parallel one (hdf5+mpi), as PartrainDeps.cmake requires")
for opt in re.findall(r"option\((PARTRAIN_\w+)", open(f"{repo}/CMakeLists.txt").read()):
    if opt not in recipe:
        bad.append(f"the recipe does not set {opt}")
for b in bad:
    print("FAILED:", b)
print("spack recipe: ok" if not bad else f"spack recipe: {len(bad)} problems")
sys.exit(1 if bad else 0)
