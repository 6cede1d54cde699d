#include "partrain/core/version.hpp"

#include <dlfcn.h>
#include <hdf5.h>
#include <link.h>
#include <mpi.h>

#include <cstdlib>
#include <string>

#include "partrain/git_commit.hpp"

namespace partrain {
namespace {
std::function<std::string()>& kokkos_line() {
  static std::function<std::string()> line;
  return line;
}
}  // namespace

void set_kokkos_version_line(std::function<std::string()> line) { kokkos_line() = std::move(line); }

std::string blas_info() {
  using name_fn = char* (*)();
  auto config = reinterpret_cast<name_fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto core = reinterpret_cast<name_fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!config || !core) {  // not OpenBLAS, or no BLAS in this executable: name what is loaded
    std::string names;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
          const std::string n = info->dlpi_name ? info->dlpi_name : "";
          if (n.find("blas") != std::string::npos || n.find("mkl") != std::string::npos)
            *static_cast<std::string*>(out) += (static_cast<std::string*>(out)->empty() ? "" : ", ") + n;
          return 0;
        },
        &names);
    return names.empty() ? "no BLAS loaded" : names;
  }
  std::string s = config();
  s += " (core " + std::string(core()) + ")";
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced) s += " OPENBLAS_CORETYPE=" + std::string(forced);
  return s;
}

std::string version_text(const std::string& app) {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(mpi, &len);  // allowed before MPI_Init
  std::string m(mpi, std::size_t(len));
  const auto eol = m.find('\n');
  if (eol != std::string::npos) m.resize(eol);
  for (auto& c : m)
    if (c == '\t') c = ' ';
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  std::string s = app + " (partrain " PARTRAIN_VERSION ", commit " PARTRAIN_GIT_COMMIT ")\n";
  s += "  MPI:    " + m + "\n";
  s += "  HDF5:   " + std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel) + "\n";
  if (kokkos_line()) s += "  Kokkos: " + kokkos_line()() + "\n";
  s += "  BLAS:   " + blas_info();
  return s;
}

}  // namespace partrain
