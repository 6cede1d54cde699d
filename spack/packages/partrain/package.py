# Spack recipe for partrain (add this repository: `spack repo add <partrain>/spack`, then `spack install partrain`).
# Written here, not run here (no Spack on the build machines); tests/unit/check_spack_recipe.py keeps its dependency
# list the same as what cmake/PartrainDeps.cmake finds.
from spack.package import *


class Partrain(CMakePackage, CudaPackage):
    """MPI benchmark and reference suite for distributed deep-learning training strategies: data, tensor and
    pipeline parallelism, ZeRO, a parameter server and a hybrid NMT, each a mini-app checked against one
    single-process reference, with HDF5 result files, SLURM/PBS scaling sweeps and a performance model."""

    homepage = "https://github.com/partrain/partrain"
    git = "https://github.com/partrain/partrain.git"

    version("main", branch="main")

    variant("nccl", default=True, when="+cuda", description="Build the NCCL communicator")
    variant("tests", default=False, description="Build the test suite (GoogleTest)")
    variant("benchmarks", default=False, description="Build the Google Benchmark micro-benchmarks")
    variant("native", default=False, description="Compile for the build machine's CPU (-march=native)")

    depends_on("cmake@3.20:", type="build")
    depends_on("mpi")
    depends_on("hdf5+mpi")
    depends_on("kokkos@3.4:")
    depends_on("kokkos-kernels@3.4:")
    depends_on("blas")
    # the host's bf16 gemms on the CPU's bf16 units (optional in CMake: without it they convert and run sgemm)
    depends_on("onednn", when="~cuda")
    depends_on("cli11")
    depends_on("tomlplusplus")
    depends_on("googletest", when="+tests")
    depends_on("benchmark", when="+benchmarks")
    depends_on("nccl", when="+nccl")
    # The CUDA build (docs/gpu.md): Kokkos compiled by its nvcc_wrapper (partrain routes its Kokkos targets there and
    # keeps the host-only ones with the host compiler), Kokkos Kernels' gemm through cuBLAS, one GPU arch per build.
    depends_on("kokkos+cuda+cuda_lambda+wrapper", when="+cuda")
    depends_on("kokkos-kernels+cuda+cublas", when="+cuda")
    for _arch in CudaPackage.cuda_arch_values:
        depends_on(f"kokkos cuda_arch={_arch}", when=f"+cuda cuda_arch={_arch}")

    def cmake_args(self):
        return [
            self.define_from_variant("PARTRAIN_TESTS", "tests"),
            self.define_from_variant("PARTRAIN_BENCHMARKS", "benchmarks"),
            self.define_from_variant("PARTRAIN_NATIVE", "native"),
            self.define("PARTRAIN_NCCL", self.spec.satisfies("+nccl")),
        ]

