#include "partrain/io/provenance.hpp"

#include <sched.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <set>
#include <vector>
#if defined(KOKKOS_ENABLE_CUDA)
#include <cuda_runtime.h>
#endif

#include "partrain/core/error.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/git_commit.hpp"

namespace partrain::io {
namespace {
std::string quote(const std::string& a) {
  if (!a.empty() && a.find_first_of(" \t\"'$\\") == std::string::npos) return a;
  std::string q = "'";
  for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// The device the default execution space runs on: the GPU (name, memory, compute capability) or the host's CPU.
std::string device_description() {
#if defined(KOKKOS_ENABLE_CUDA)
  int dev = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
    char gib[32];
    std::snprintf(gib, sizeof gib, "%.1f", double(prop.totalGlobalMem) / 1073741824.0);
    return std::string(prop.name) + ", " + gib + " GiB, sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
           " (GPU " + std::to_string(dev) + ")";
  }
  return "a CUDA device (its properties could not be read)";
#else
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2) + " (host)";
    }
  return "the host CPU";
#endif
}

/// "driver 13000, runtime 13000" (CUDA's version numbers), or "none" in a host build.
std::string cuda_versions() {
#if defined(KOKKOS_ENABLE_CUDA)
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  return "driver " + std::to_string(driver) + ", runtime " + std::to_string(runtime);
#else
  return "none";
#endif
}
}  // namespace

Provenance collect_provenance(MPI_Comm comm, int argc, char** argv) {
  Provenance p;
  PARTRAIN_MPI_CHECK(MPI_Comm_size(comm, &p.nranks));
  char buf[64];
  std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  p.created_utc = buf;
  p.git_commit = PARTRAIN_GIT_COMMIT;

  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::vector<char> all(std::size_t(256) * p.nranks);
  PARTRAIN_MPI_CHECK(MPI_Allgather(host, 256, MPI_CHAR, all.data(), 256, MPI_CHAR, comm));
  std::set<std::string> hosts;
  for (int r = 0; r < p.nranks; ++r) hosts.insert(std::string(&all[std::size_t(r) * 256]));
  for (const auto& h : hosts) p.hostnames += (p.hostnames.empty() ? "" : ",") + h;

  char lib[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(lib, &len);
  p.mpi_version = std::string(lib, std::size_t(len));
  for (auto& c : p.mpi_version)  // one line: MPICH reports several, separated by newlines and tabs
    if (c == '\n' || c == '\t') c = ' ';
  p.mpi_version.erase(std::unique(p.mpi_version.begin(), p.mpi_version.end(),
                                  [](char a, char b) { return a == ' ' && b == ' '; }),
                      p.mpi_version.end());

  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  p.hdf5_version = std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
  p.kokkos_version = kokkos_version_line();
  p.blas = blas_info();
#if defined(__clang__)
  p.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  p.compiler = std::string("gcc ") + __VERSION__;
#else
  p.compiler = "unknown";
#endif
  p.execution_space = Kokkos::DefaultExecutionSpace::name();
  p.device = device_description();
  p.cuda_versions = cuda_versions();
  p.threads = Kokkos::DefaultExecutionSpace().concurrency();
  {
    auto env = [](const char* v) { const char* x = std::getenv(v); return std::string(x ? x : "unset"); };
    cpu_set_t set;
    CPU_ZERO(&set);
    const int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    p.threading = std::to_string(p.threads) + " thread" + (p.threads == 1 ? "" : "s") + " per rank (Kokkos " +
                  Kokkos::DefaultExecutionSpace::name() + "); OMP_NUM_THREADS=" + env("OMP_NUM_THREADS") +
                  " OMP_WAIT_POLICY=" + env("OMP_WAIT_POLICY") + " OMP_PROC_BIND=" + env("OMP_PROC_BIND") +
                  " OPENBLAS_NUM_THREADS=" + env("OPENBLAS_NUM_THREADS") + "; " + std::to_string(cores) +
                  " cores allowed; " + [&] {
                    const std::size_t per = p.nranks / std::max<std::size_t>(1, hosts.size());
                    return std::to_string(per) + (per == 1 ? " rank per host" : " ranks per host");
                  }();
  }
  for (int i = 0; i < argc; ++i) p.command_line += (i ? " " : "") + quote(argv[i]);
  for (const char* v : {"SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID"})
    if (const char* id = std::getenv(v)) {
      p.job_id = id;
      break;
    }
  return p;
}

void write_provenance(H5Writer& w, const Provenance& p) {
  const hid_t root = w.root();
  w.attr(root, "schema", std::string(kResultSchema));
  w.attr(root, "schema_version", kResultSchemaVersion);
  w.attr(root, "created_utc", p.created_utc);
  w.attr(root, "threads", std::int64_t(p.threads));
  w.attr(root, "threading", p.threading);
  w.attr(root, "git_commit", p.git_commit);
  w.attr(root, "hostnames", p.hostnames);
  w.attr(root, "mpi_version", p.mpi_version);
  w.attr(root, "hdf5_version", p.hdf5_version);
  w.attr(root, "kokkos_version", p.kokkos_version);
  w.attr(root, "blas", p.blas);
  w.attr(root, "execution_space", p.execution_space);
  w.attr(root, "device", p.device);
  w.attr(root, "cuda_versions", p.cuda_versions);
  w.attr(root, "compiler", p.compiler);
  w.attr(root, "command_line", p.command_line);
  w.attr(root, "job_id", p.job_id);
  w.attr(root, "nranks", std::int64_t(p.nranks));
}

}  // namespace partrain::io
