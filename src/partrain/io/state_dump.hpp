// --dump-state FILE.h5: the training state after the last step's backward, before the optimizer update, so runs
// can be compared with each other and with other frameworks (DESIGN.md, Results):
//   /loss             scalar, mean over the global batch
//   /batch/inputs     MLP: features [S, d0] (float);  GPT: tokens [S, T] (int32)
//   /batch/ids        sparse MLP: embedding-bag ids [S, F·bag] (its dense features are /batch/inputs)
//   /batch/targets    MLP: labels [S];  GPT: next tokens [S, T]
//   /params/<name>    full tensors, PyTorch names and shapes
//   /grads/<name>     gradients of the mean loss
//   root attrs        model, config_toml, dtype
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "partrain/models/layer.hpp"
#include "partrain/models/param_store.hpp"

namespace partrain::io {

struct StateDumpInfo {
  std::string path;
  bool overwrite = false;
  std::string model, config_toml;
};

/// A whole tensor: name, shape, values (in the element type T when written).
struct NamedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<double> values;
};

/// Writes the dump from whole parameters and gradients (gathered by the caller where they are sharded) and the
/// global batch; values are stored as T. Call on one rank.
template <class T>
void write_state_dump(const StateDumpInfo& info, const std::vector<NamedTensor>& params,
                      const std::vector<NamedTensor>& grads, const models::Batch<T>& global_batch,
                      std::int64_t rows_per_sample, double loss);

/// Gathers every rank's tensors to `root` of `comm` (concatenated in rank order there; others get nothing). Collective.
std::vector<NamedTensor> gather_named_tensors(MPI_Comm comm, const std::vector<NamedTensor>& mine, int root = 0);

/// Every parameter (or gradient) of an unsharded store as a whole tensor.
template <class T>
std::vector<NamedTensor> named_tensors(const models::ParamStore<T>& ps, bool grads);

/// The same from an unsharded parameter store.
template <class T>
void write_state_dump(const StateDumpInfo& info, const models::ParamStore<T>& params,
                      const models::Batch<T>& global_batch, std::int64_t rows_per_sample, double loss);

}  // namespace partrain::io
