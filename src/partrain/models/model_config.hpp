// The model, data and training keys every mini-app's deck shares ([model], [data], [train]), their validation,
// and the factories that build the model and dataset they describe.
#pragma once

#include <memory>
#include <string>

#include "partrain/core/config.hpp"
#include "partrain/models/datasets.hpp"
#include "partrain/models/gpt.hpp"
#include "partrain/models/mlp.hpp"
#include "partrain/models/nmt.hpp"
#include "partrain/models/loss_scaler.hpp"
#include "partrain/models/optimizer.hpp"
#include "partrain/models/sparse_mlp.hpp"

namespace partrain::models {

struct ModelSpec {
  std::string kind = "gpt";  ///< gpt | mlp | nmt | sparse_mlp
  std::uint64_t seed = 1234, data_seed = 42;
  GptConfig gpt;
  MlpConfig mlp;
  NmtConfig nmt;
  SparseMlpConfig sparse;
  std::string dtype = "fp32";  ///< fp32 | fp64
};

struct TrainSpec {
  std::int64_t global_batch = 8;  ///< samples per step, over all data-parallel ranks
  std::int64_t steps = 20, warmup = 2;
  std::int64_t warmup_requested = 2;  ///< train.warmup as given; warmup is clamped to steps − 1
  OptimizerConfig optimizer;
  std::string precision = "fp32";  ///< train.precision: fp32 (model.dtype's type throughout), bf16, fp16
  LossScalerConfig loss_scale;     ///< fp16 only
};

void declare_model_keys(Deck& deck);
void declare_train_keys(Deck& deck);
/// Reads and cross-checks the keys (heads divide channels, …): InputError naming key and value.
ModelSpec read_model_spec(const Deck& deck);
TrainSpec read_train_spec(const Deck& deck);

/// The model's layers, not built (a strategy allocates what it holds); make_model builds it whole from model.seed.
template <class T>
std::unique_ptr<Model<T>> make_layers(const ModelSpec& spec);
template <class T>
std::unique_ptr<Model<T>> make_model(const ModelSpec& spec);
template <class T>
std::unique_ptr<Dataset<T>> make_dataset(const ModelSpec& spec);

/// Forward FLOPs of the whole model for `samples` samples, counted from the shapes (no parameters allocated).
double forward_flops(const ModelSpec& spec, std::int64_t samples);

/// Input rows per sample: T for GPT, 1 for the MLP, S (the padded length) for NMT.
std::int64_t rows_per_sample(const ModelSpec& spec);
/// Tokens a sample counts for tokens/s: T for GPT, the mean real target length (min_len + max_len)/2 for NMT (the
/// lengths are uniform), 1 for the MLP.
double tokens_per_sample(const ModelSpec& spec);
/// "gpt(V=512,T=128,L=4,C=256,H=4)" or "mlp(1024-1024-…)"
std::string describe(const ModelSpec& spec);
/// Refuses a model kind the mini-app does not train: InputError naming model.kind and the kinds it takes.
void require_kind(const ModelSpec& spec, const std::string& app, const std::vector<std::string>& kinds);
/// Refuses a mixture-of-experts GPT (model.gpt.moe.every > 0) in a mini-app that trains the dense one only.
void require_dense(const ModelSpec& spec, const std::string& app);

}  // namespace partrain::models
