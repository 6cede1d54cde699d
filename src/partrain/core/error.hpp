// Errors and check macros.
//
// Two kinds of failure:
//  - InputError: the user's input is wrong (a deck key, a flag, a path). Thrown before any communication,
//    identically on every rank; a mini-app's main catches it, prints one line on every rank and exits non-zero.
//  - a library call failed (MPI, HDF5, CUDA, NCCL): the check macros print rank, file:line and the library's own
//    error string, then throw RuntimeError (HDF5) or abort the job (MPI, whose failures cannot be recovered).
#pragma once

#include <stdexcept>
#include <string>

namespace partrain {

/// Bad user input: message names the offending key and value.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A library call failed at run time.
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// This process's rank in MPI_COMM_WORLD, or -1 before MPI_Init / after MPI_Finalize.
int world_rank_or_minus_one();

/// Formats "[rank r] file:line: what: detail".
std::string located_message(const char* file, int line, const std::string& what, const std::string& detail);

[[noreturn]] void mpi_failure(int code, const char* call, const char* file, int line);
[[noreturn]] void hdf5_failure(const char* call, const char* file, int line);

/// Throws InputError with "key = value: reason".
[[noreturn]] void input_error(const std::string& key, const std::string& value, const std::string& reason);

}  // namespace partrain

#define PARTRAIN_MPI_CHECK(call)                                              \
  do {                                                                        \
    int partrain_mpi_rc_ = (call);                                            \
    if (partrain_mpi_rc_ != 0) ::partrain::mpi_failure(partrain_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (0)

// HDF5 calls return a negative herr_t / hid_t on failure.
#define PARTRAIN_H5_CHECK(call)                                               \
  ([&]() {                                                                    \
    auto partrain_h5_rc_ = (call);                                            \
    if (partrain_h5_rc_ < 0) ::partrain::hdf5_failure(#call, __FILE__, __LINE__); \
    return partrain_h5_rc_;                                                   \
  }())

#define PARTRAIN_REQUIRE(cond, msg)                                           \
  do {                                                                        \
    if (!(cond))                                                              \
      throw ::partrain::RuntimeError(::partrain::located_message(__FILE__, __LINE__, "check failed: " #cond, (msg))); \
  } while (0)
