// What `--version` prints and every result file records: partrain's version and commit, the MPI, HDF5 and BLAS a
// program runs with, and — in the programs that link Kokkos — Kokkos's version and execution space. Host-only (no
// Kokkos here): the Kokkos line comes from the runtime (runtime.cpp registers it), so partrain-sweep and
// partrain-compare, which link no Kokkos, print none.
#pragma once

#include <functional>
#include <string>

namespace partrain {

/// Which BLAS is loaded and the kernel it runs: "OpenBLAS 0.3.21 ... (core Haswell)" or "no BLAS loaded".
std::string blas_info();
/// `--version` text: the program, partrain's version and commit, MPI, HDF5, the Kokkos line if registered, BLAS.
std::string version_text(const std::string& app);
/// Sets the Kokkos line of version_text ("4.6.1 (Cuda)").
void set_kokkos_version_line(std::function<std::string()> line);

}  // namespace partrain
