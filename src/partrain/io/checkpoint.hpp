// Checkpoints every mini-app can write and read (DESIGN.md, Checkpoints): one HDF5 file per checkpoint,
// <dir>/ckpt-<step>.h5, written collectively with parallel HDF5 (the MPI-IO driver) — every rank writes the parts of
// the tensors it holds — to a temporary name that is renamed when complete. Tensors are stored whole under the
// reference's names and shapes (/params/<name>, /optim/<state>/<name>), so a checkpoint saved at one layout can be
// read at any other: a reader asks for the parts it needs. Every tensor carries a checksum, verified when a
// checkpoint is chosen for resuming; a truncated or corrupt file is reported by name and skipped.
//   / attrs   schema "partrain.checkpoint", schema_version 1, step (the next step to run), model, config_toml, and
//             any numbers and strings the strategy adds (optimizer steps, clocks, ...)
//   /<group>/<name>   dataset of the tensor's shape; attrs checksum (uint64), units, description
#pragma once

#include <mpi.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "partrain/models/param_store.hpp"

namespace partrain::io {

/// A tensor as the checkpoint stores it: "params/wte", "optim/m/wte", ... and its whole shape.
struct CheckpointTensor {
  std::string path;
  std::vector<std::int64_t> shape;
};

/// A block of a tensor one rank holds: `start`, `count` per dimension (a hyperslab of the whole tensor) and its values
/// in row-major order.
struct TensorPart {
  std::string path;
  std::vector<std::int64_t> start, count;
  std::vector<double> values;
};

struct CheckpointMeta {
  std::int64_t step = 0;  ///< the next step to run
  std::string model, config_toml;
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
};

/// Writes `path` collectively over `comm`: every rank passes the same `tensors` and `meta`, and its own `parts`
/// (possibly none); `float32` stores the values as float (else double). Throws RuntimeError on I/O failure (the
/// temporary file is removed).
void write_checkpoint(MPI_Comm comm, const std::string& path, const CheckpointMeta& meta,
                      const std::vector<CheckpointTensor>& tensors, const std::vector<TensorPart>& parts, bool float32);

/// Reads, collectively, the parts each rank asks for (start/count set, values filled) and the metadata.
void read_checkpoint(MPI_Comm comm, const std::string& path, std::vector<TensorPart>& parts, CheckpointMeta* meta);

/// Start-up check of a checkpoint directory, an InputError naming `key` (shown with `value`): it is a directory one
/// can write into, or can be created in a writable one; it holds no checkpoints unless this run resumes or may
/// overwrite them. A directory that does not exist yet is fine for --resume (a requeued job's first attempt).
void check_checkpoint_dir(const std::string& key, const std::string& value, const std::string& dir, bool resume,
                          bool overwrite);
/// The checkpoint files of `dir`, newest step first.
std::vector<std::string> checkpoint_files(const std::string& dir);
/// Collective: the newest checkpoint in `dir` that opens, has the schema and every tensor's checksum right; the
/// ones skipped are described in `skipped` ("ckpt-40.h5: tensor params/wte: checksum mismatch"). Empty when none.
std::string newest_valid_checkpoint(MPI_Comm comm, const std::string& dir, std::vector<std::string>* skipped);
/// Removes all but the newest `keep` checkpoint files of `dir`, and the temporaries of writes that never finished
/// (call on one rank, when no write is under way).
void prune_checkpoints(const std::string& dir, int keep);
/// "<dir>/ckpt-<step>.h5"
std::string checkpoint_path(const std::string& dir, std::int64_t step);

/// The parts of a store's tensors that flat elements [begin, end) of its buffer cover (each tensor's share as up to
/// three hyperslabs: a partial first row, whole rows, a partial last row), with `values` (end − begin of them), under
/// `group` ("params", "optim/m", ...). Shapes are the store's (whole, unsharded) shapes.
template <class T>
std::vector<TensorPart> flat_range_parts(const models::ParamStore<T>& ps, const std::string& group, std::int64_t begin,
                                         std::int64_t end, const double* values);
/// The checkpoint tensors of a store under `group`.
template <class T>
std::vector<CheckpointTensor> store_tensors(const models::ParamStore<T>& ps, const std::string& group);

}  // namespace partrain::io
