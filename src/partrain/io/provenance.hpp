// Provenance of a run, written as root attributes of every result file (DESIGN.md, Results): what ran, where,
// when, built how, with which libraries. Collected once, collectively (hostnames are gathered from every rank).
#pragma once

#include <mpi.h>

#include <string>

#include "partrain/io/h5.hpp"

namespace partrain::io {

struct Provenance {
  std::string created_utc, git_commit, hostnames, mpi_version, hdf5_version, kokkos_version, blas, compiler,
      command_line, job_id;
  /// threads per rank and how they run: Kokkos' concurrency, OMP_NUM_THREADS, OMP_WAIT_POLICY, OMP_PROC_BIND,
  /// OPENBLAS_NUM_THREADS, the cores this rank may run on, ranks per host (rank 0's view; the launch is the same)
  std::string threading;
  /// Kokkos's default execution space ("Serial", "OpenMP", "Cuda"); the device its kernels run on, as rank 0 sees it
  /// (a GPU's name, memory and compute capability, or the host CPU's model); the CUDA driver and runtime versions
  /// ("none" in a host build).
  std::string execution_space, device, cuda_versions;
  int nranks = 1, threads = 1;
};

/// Collective over comm. `argv` is joined (shell-quoted where needed) into command_line.
Provenance collect_provenance(MPI_Comm comm, int argc, char** argv);

/// Writes the schema name/version and every provenance field as root attributes.
void write_provenance(H5Writer& w, const Provenance& p);

constexpr const char* kResultSchema = "partrain.result";
constexpr std::int64_t kResultSchemaVersion = 1;

}  // namespace partrain::io
