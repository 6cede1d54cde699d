# Dependency lookup. Every dependency is a Debian 12 package; a missing one stops CMake with the package name.
include_guard(GLOBAL)

macro(partrain_require found what package)
  if(NOT ${found})
    message(FATAL_ERROR "partrain: ${what} not found. On Debian 12: apt-get install ${package} "
                        "(or run scripts/install-deps).")
  endif()
endmacro()

set(MPI_DETERMINE_LIBRARY_VERSION TRUE)
find_package(MPI COMPONENTS CXX)
partrain_require(MPI_CXX_FOUND "MPI (C++)" "libmpich-dev mpich")
# Which MPI this is (MPICH or Open MPI): Debian keeps a parallel HDF5 and an mpiexec per MPI, and the three must
# match. Select Open MPI with -DMPI_CXX_COMPILER=mpicxx.openmpi; the matching HDF5 and mpiexec follow.
if(MPI_CXX_LIBRARY_VERSION_STRING MATCHES "Open MPI" OR MPI_CXX_INCLUDE_DIRS MATCHES "openmpi")
  set(PARTRAIN_MPI_FLAVOUR openmpi)
else()
  set(PARTRAIN_MPI_FLAVOUR mpich)
endif()
# FindMPI takes /usr/bin/mpiexec, which Debian's alternatives may point at the other MPI.
if(MPIEXEC_EXECUTABLE STREQUAL "/usr/bin/mpiexec" AND EXISTS /usr/bin/mpiexec.${PARTRAIN_MPI_FLAVOUR})
  set(MPIEXEC_EXECUTABLE /usr/bin/mpiexec.${PARTRAIN_MPI_FLAVOUR} CACHE FILEPATH "mpiexec of the MPI found" FORCE)
endif()

find_package(Kokkos QUIET)
partrain_require(Kokkos_FOUND "Kokkos" "libtrilinos-kokkos-dev")
# Debian's Kokkos 3.4 target carries a wrong include dir (/usr/lib/include): point it at the real one.
if(Kokkos_INCLUDE_DIRS)
  set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${Kokkos_INCLUDE_DIRS}")
endif()

find_package(KokkosKernels QUIET)
partrain_require(KokkosKernels_FOUND "KokkosKernels" "libtrilinos-kokkos-kernels-dev")
# Kokkos 4.x exports Kokkos::kokkoskernels; Debian's TriBITS build (3.4) exports trilinos_kokkoskernels.
if(TARGET Kokkos::kokkoskernels)
  set(PARTRAIN_KOKKOSKERNELS Kokkos::kokkoskernels)
elseif(TARGET trilinos_kokkoskernels)
  set(PARTRAIN_KOKKOSKERNELS trilinos_kokkoskernels)
elseif(KokkosKernels_LIBRARIES)
  set(PARTRAIN_KOKKOSKERNELS ${KokkosKernels_LIBRARIES})
else()
  message(FATAL_ERROR "partrain: KokkosKernels found but it defines no library target")
endif()

# Parallel HDF5 (the MPICH build on Debian). A serial HDF5 is refused: result files are written collectively.
set(HDF5_PREFER_PARALLEL TRUE)
if(NOT HDF5_ROOT AND EXISTS /usr/lib/x86_64-linux-gnu/hdf5/${PARTRAIN_MPI_FLAVOUR})
  set(HDF5_ROOT /usr/lib/x86_64-linux-gnu/hdf5/${PARTRAIN_MPI_FLAVOUR})
endif()
find_package(HDF5 COMPONENTS C)
partrain_require(HDF5_FOUND "HDF5" "libhdf5-mpich-dev")
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "partrain: found a serial HDF5 (${HDF5_C_INCLUDE_DIRS}); partrain needs the parallel one. "
                      "On Debian 12: apt-get install libhdf5-mpich-dev, or set HDF5_ROOT to a parallel HDF5.")
endif()

find_package(BLAS)
partrain_require(BLAS_FOUND "BLAS" "libopenblas-dev")

find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp)
  if(CLI11_INCLUDE_DIR)
    set(CLI11_FOUND TRUE)
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CLI11_INCLUDE_DIR}")
  endif()
endif()
partrain_require(CLI11_FOUND "CLI11" "libcli11-dev")

find_package(tomlplusplus CONFIG QUIET)
if(NOT tomlplusplus_FOUND)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(tomlplusplus QUIET IMPORTED_TARGET tomlplusplus)
    if(tomlplusplus_FOUND)
      add_library(tomlplusplus::tomlplusplus ALIAS PkgConfig::tomlplusplus)
    endif()
  endif()
endif()
partrain_require(tomlplusplus_FOUND "toml++" "libtomlplusplus-dev")

if(PARTRAIN_TESTS)
  find_package(GTest)
  partrain_require(GTest_FOUND "GoogleTest" "libgtest-dev")
endif()
if(PARTRAIN_BENCHMARKS)
  find_package(benchmark QUIET)
  partrain_require(benchmark_FOUND "Google Benchmark" "libbenchmark-dev")
endif()

# CUDA + NCCL: optional. Found on the build machines (compile and link only); used on GPU machines.
set(PARTRAIN_HAVE_NCCL OFF)
if(PARTRAIN_NCCL)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    find_library(PARTRAIN_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
    find_path(PARTRAIN_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
    if(PARTRAIN_NCCL_LIBRARY AND PARTRAIN_NCCL_INCLUDE_DIR)
      set(PARTRAIN_HAVE_NCCL ON)
    endif()
  endif()
endif()
message(STATUS "partrain: MPI ${MPI_CXX_VERSION} (${PARTRAIN_MPI_FLAVOUR}, ${MPIEXEC_EXECUTABLE}), Kokkos ${Kokkos_VERSION}, HDF5 ${HDF5_VERSION} (parallel), "
               "BLAS ${BLAS_LIBRARIES}, NCCL ${PARTRAIN_HAVE_NCCL}")
