#include "partrain/models/model_config.hpp"

#include "partrain/core/error.hpp"

#include <algorithm>

namespace partrain::models {

void declare_model_keys(Deck& d) {
  d.declare_string("model.kind", "gpt", "reference model", {"gpt", "mlp", "nmt", "sparse_mlp"});
  d.declare_int("model.seed", 1234, "seed of the initial parameters", 0);
  d.declare_string("model.dtype", "fp32", "floating-point type of parameters and activations", {"fp32", "fp64"});
  d.declare_int("model.gpt.vocab", 512, "vocabulary size V", 2, 1 << 24);
  d.declare_int("model.gpt.seq_len", 128, "sequence length T", 1, 1 << 20);
  d.declare_int("model.gpt.layers", 4, "transformer blocks L", 1, 4096);
  d.declare_int("model.gpt.channels", 256, "hidden size C", 1, 1 << 20);
  d.declare_int("model.gpt.heads", 4, "attention heads H (divides C)", 1, 4096);
  d.declare_int("model.gpt.moe.every", 0, "every moe.every-th block's MLP is a mixture of experts (0: dense; docs/ep.md)",
                0, 4096);
  d.declare_int("model.gpt.moe.experts", 8, "experts E per MoE block", 1, 1 << 16);
  d.declare_int("model.gpt.moe.top_k", 1, "experts per token k (1: Switch, 2: GShard/Mixtral gates)", 1, 2);
  d.declare_float("model.gpt.moe.capacity_factor", 1.25,
                  "tokens an expert takes per sequence: ceil(factor * k * T / E); the rest are dropped", 0.0, 1e6, true);
  d.declare_float("model.gpt.moe.aux_loss_coef", 0.01, "coefficient of the load-balancing (Switch) loss", 0.0, 1e6);
  d.declare_int_list("model.mlp.widths", {1024, 1024, 1024, 1024, 1024},
                     "layer widths d0..dL (dL = classes)", 1);
  d.declare_string("model.mlp.activation", "gelu", "activation between layers", {"gelu", "relu"});
  d.declare_int("model.nmt.vocab", 512, "vocabulary size V (source and target; tokens 0, 1 are padding and BOS)", 4, 1 << 24);
  d.declare_int("model.nmt.embed", 64, "embedding size E", 1, 1 << 20);
  d.declare_int("model.nmt.hidden", 64, "LSTM units H (even: H/2 per direction in the bidirectional layer)", 2, 1 << 20);
  d.declare_int("model.nmt.enc_layers", 2, "encoder LSTM layers (the first bidirectional)", 2, 1024);
  d.declare_int("model.nmt.dec_layers", 2, "decoder LSTM layers", 1, 1024);
  d.declare_int("model.nmt.min_len", 4, "shortest sentence", 1, 1 << 16);
  d.declare_int("model.nmt.max_len", 12, "longest sentence S (batches are padded to it)", 1, 1 << 16);
  d.declare_int("model.sparse_mlp.tables", 4, "embedding tables F (one sparse feature each)", 1, 4096);
  d.declare_int("model.sparse_mlp.rows", 100000, "rows per table", 1, std::int64_t(1) << 31);
  d.declare_int("model.sparse_mlp.dim", 16, "embedding dimension D", 1, 1 << 16);
  d.declare_int("model.sparse_mlp.bag", 4, "ids per sample per table (sum-pooled)", 1, 1 << 16);
  d.declare_int("model.sparse_mlp.dense", 8, "dense features per sample", 0, 1 << 16);
  d.declare_int_list("model.sparse_mlp.widths", {64, 32}, "hidden widths of the MLP over the lookups (then 2 classes)", 1);
  d.declare_int("data.seed", 42, "seed of the synthetic data", 0);
}

void declare_train_keys(Deck& d) {
  d.declare_int("train.batch", 8, "global batch in samples (sequences for GPT)", 1, 1 << 30);
  d.declare_int("train.steps", 20, "training steps", 1, 1 << 30);
  d.declare_int("train.warmup", 2, "steps excluded from timing (clamped to train.steps - 1)", 0, 1 << 30);
  d.declare_string("train.optimizer", "adamw", "optimizer (adagrad: every mini-app but partrain-zero)",
                   {"sgd", "adam", "adamw", "adagrad"});
  d.declare_float("train.lr", 1e-3, "learning rate", 0.0, 1e6);
  d.declare_float("train.momentum", 0.0, "SGD momentum", 0.0, 1.0);
  d.declare_float("train.beta1", 0.9, "Adam beta1", 0.0, 1.0);
  d.declare_float("train.beta2", 0.999, "Adam beta2", 0.0, 1.0);
  d.declare_float("train.eps", 1e-8, "Adam's (and AdaGrad's) epsilon", 0.0, 1.0);
  d.declare_float("train.weight_decay", 0.0, "weight decay (decoupled for AdamW)", 0.0, 1e6);
  d.declare_string("train.precision", "fp32",
                   "compute precision: fp32 (model.dtype throughout), or bf16 / fp16 activations, parameters and "
                   "gradients with fp32 master weights and optimizer state (docs/precision.md)",
                   {"fp32", "bf16", "fp16"});
  d.declare_float("train.loss_scale.initial", 65536.0, "fp16: initial loss scale (GradScaler's init_scale)", 0.0,
                  1e38, true);
  d.declare_bool("train.loss_scale.dynamic", true, "fp16: grow and back off the scale (false: keep it fixed)");
  d.declare_int("train.loss_scale.growth_interval", 2000, "fp16: finite steps before the scale grows", 1, 1 << 30);
  d.declare_float("train.loss_scale.growth_factor", 2.0, "fp16: factor the scale grows by", 1.0, 1e6, true);
  d.declare_float("train.loss_scale.backoff_factor", 0.5, "fp16: factor the scale shrinks by after inf/NaN", 0.0, 1.0,
                  true);
}

ModelSpec read_model_spec(const Deck& d) {
  ModelSpec s;
  s.kind = d.get_string("model.kind");
  s.seed = std::uint64_t(d.get_int("model.seed"));
  s.data_seed = std::uint64_t(d.get_int("data.seed"));
  s.dtype = d.get_string("model.dtype");
  s.gpt.vocab = d.get_int("model.gpt.vocab");
  s.gpt.seq_len = d.get_int("model.gpt.seq_len");
  s.gpt.layers = d.get_int("model.gpt.layers");
  s.gpt.channels = d.get_int("model.gpt.channels");
  s.gpt.heads = d.get_int("model.gpt.heads");
  s.gpt.moe.every = d.get_int("model.gpt.moe.every");
  s.gpt.moe.experts = d.get_int("model.gpt.moe.experts");
  s.gpt.moe.top_k = d.get_int("model.gpt.moe.top_k");
  s.gpt.moe.capacity_factor = d.get_float("model.gpt.moe.capacity_factor");
  s.gpt.moe.aux_loss_coef = d.get_float("model.gpt.moe.aux_loss_coef");
  s.mlp.widths = d.get_int_list("model.mlp.widths");
  s.mlp.activation =
      d.get_string("model.mlp.activation") == "relu" ? kernels::Activation::Relu : kernels::Activation::Gelu;
  s.nmt.vocab = d.get_int("model.nmt.vocab");
  s.nmt.embed = d.get_int("model.nmt.embed");
  s.nmt.hidden = d.get_int("model.nmt.hidden");
  s.nmt.enc_layers = d.get_int("model.nmt.enc_layers");
  s.nmt.dec_layers = d.get_int("model.nmt.dec_layers");
  s.nmt.min_len = d.get_int("model.nmt.min_len");
  s.nmt.max_len = d.get_int("model.nmt.max_len");
  s.sparse.tables = d.get_int("model.sparse_mlp.tables");
  s.sparse.rows = d.get_int("model.sparse_mlp.rows");
  s.sparse.dim = d.get_int("model.sparse_mlp.dim");
  s.sparse.bag = d.get_int("model.sparse_mlp.bag");
  s.sparse.dense = d.get_int("model.sparse_mlp.dense");
  s.sparse.widths = d.get_int_list("model.sparse_mlp.widths");
  if (s.kind == "nmt" && s.nmt.hidden % 2 != 0)
    input_error("model.nmt.hidden", std::to_string(s.nmt.hidden), "must be even (H/2 units per direction of the bidirectional layer)");
  if (s.kind == "nmt" && s.nmt.min_len > s.nmt.max_len)
    input_error("model.nmt.min_len", std::to_string(s.nmt.min_len),
                "must be <= model.nmt.max_len = " + std::to_string(s.nmt.max_len));
  if (s.kind == "gpt" && s.gpt.channels % s.gpt.heads != 0)
    input_error("model.gpt.heads", std::to_string(s.gpt.heads),
                "must divide model.gpt.channels = " + std::to_string(s.gpt.channels));
  if (s.kind == "gpt" && s.gpt.moe.top_k > s.gpt.moe.experts)
    input_error("model.gpt.moe.top_k", std::to_string(s.gpt.moe.top_k),
                "must be <= model.gpt.moe.experts = " + std::to_string(s.gpt.moe.experts));
  if (s.kind == "gpt" && s.gpt.moe.every > s.gpt.layers)
    input_error("model.gpt.moe.every", std::to_string(s.gpt.moe.every),
                "leaves no MoE block: must be <= model.gpt.layers = " + std::to_string(s.gpt.layers));
  if (s.kind == "mlp" && s.mlp.widths.size() < 2)
    input_error("model.mlp.widths", Deck::render(s.mlp.widths), "needs at least two widths (inputs and classes)");
  if (s.kind == "mlp" && s.mlp.widths.back() < 2)
    input_error("model.mlp.widths", Deck::render(s.mlp.widths), "the last width (classes) must be >= 2");
  return s;
}

TrainSpec read_train_spec(const Deck& d) {
  TrainSpec t;
  t.global_batch = d.get_int("train.batch");
  t.steps = d.get_int("train.steps");
  t.warmup = d.get_int("train.warmup");
  t.warmup_requested = t.warmup;
  t.warmup = std::min(t.warmup, t.steps - 1);  // at least one timed step (the driver prints a notice)
  t.optimizer.kind = d.get_string("train.optimizer");
  t.optimizer.lr = d.get_float("train.lr");
  t.optimizer.momentum = d.get_float("train.momentum");
  t.optimizer.beta1 = d.get_float("train.beta1");
  t.optimizer.beta2 = d.get_float("train.beta2");
  t.optimizer.eps = d.get_float("train.eps");
  t.optimizer.weight_decay = d.get_float("train.weight_decay");
  t.precision = d.get_string("train.precision");
  if (t.precision != "fp32" && d.has("model.dtype") && d.get_string("model.dtype") != "fp32")
    input_error("train.precision", t.precision,
                "mixed precision keeps fp32 master weights: it needs model.dtype = fp32 (not " +
                    d.get_string("model.dtype") + ")");
  t.loss_scale.initial = d.get_float("train.loss_scale.initial");
  t.loss_scale.dynamic = d.get_bool("train.loss_scale.dynamic");
  t.loss_scale.growth_interval = d.get_int("train.loss_scale.growth_interval");
  t.loss_scale.growth_factor = d.get_float("train.loss_scale.growth_factor");
  t.loss_scale.backoff_factor = d.get_float("train.loss_scale.backoff_factor");
  // A scaler setting that is not its default on a run without fp16 would be ignored: refused (a deck printed by
  // --print-deck holds the defaults and loads in any precision).
  const LossScalerConfig def;
  const std::pair<const char*, bool> changed[] = {
      {"train.loss_scale.initial", t.loss_scale.initial != def.initial},
      {"train.loss_scale.dynamic", t.loss_scale.dynamic != def.dynamic},
      {"train.loss_scale.growth_interval", t.loss_scale.growth_interval != def.growth_interval},
      {"train.loss_scale.growth_factor", t.loss_scale.growth_factor != def.growth_factor},
      {"train.loss_scale.backoff_factor", t.loss_scale.backoff_factor != def.backoff_factor}};
  for (const auto& [k, differs] : changed)
    if (t.precision != "fp16" && differs)
      input_error(k, Deck::render(d.get(k)), "loss scaling is for train.precision = fp16 (this run is " + t.precision + ")");
  return t;
}

template <class T>
std::unique_ptr<Model<T>> make_layers(const ModelSpec& s) {
  if (s.kind == "gpt") return std::make_unique<Gpt<T>>(s.gpt);
  if (s.kind == "nmt") return std::make_unique<Nmt<T>>(s.nmt);
  if (s.kind == "sparse_mlp") return std::make_unique<SparseMlp<T>>(s.sparse);
  return std::make_unique<Mlp<T>>(s.mlp);
}

template <class T>
std::unique_ptr<Model<T>> make_model(const ModelSpec& s) {
  auto m = make_layers<T>(s);
  m->build(s.seed);
  return m;
}

template <class T>
std::unique_ptr<Dataset<T>> make_dataset(const ModelSpec& s) {
  if (s.kind == "gpt") return std::make_unique<MarkovDataset<T>>(s.data_seed, s.gpt.vocab, s.gpt.seq_len);
  if (s.kind == "nmt")
    return std::make_unique<TranslationDataset<T>>(s.data_seed, s.nmt.vocab, s.nmt.min_len, s.nmt.max_len);
  if (s.kind == "sparse_mlp")
    return std::make_unique<ClickDataset<T>>(s.data_seed, s.sparse.tables, s.sparse.rows, s.sparse.bag, s.sparse.dense);
  return std::make_unique<TeacherDataset<T>>(s.data_seed, s.mlp.widths.front(), s.mlp.widths.back());
}

double forward_flops(const ModelSpec& s, std::int64_t samples) {
  if (s.kind == "gpt") return Gpt<double>(s.gpt).forward_flops(samples);  // layers only: nothing is allocated
  if (s.kind == "nmt") return Nmt<double>(s.nmt).forward_flops(samples);
  if (s.kind == "sparse_mlp") return SparseMlp<double>(s.sparse).forward_flops(samples);
  return Mlp<double>(s.mlp).forward_flops(samples);
}

std::int64_t rows_per_sample(const ModelSpec& s) {
  return s.kind == "gpt" ? s.gpt.seq_len : s.kind == "nmt" ? s.nmt.max_len : 1;
}

double tokens_per_sample(const ModelSpec& s) {
  if (s.kind == "nmt") return 0.5 * double(s.nmt.min_len + s.nmt.max_len);
  return double(rows_per_sample(s));
}

void require_kind(const ModelSpec& s, const std::string& app, const std::vector<std::string>& kinds) {
  if (std::find(kinds.begin(), kinds.end(), s.kind) != kinds.end()) return;
  std::string list;
  for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
  input_error("model.kind", "\"" + s.kind + "\"", app + " trains " + list);
}

void require_dense(const ModelSpec& s, const std::string& app) {
  if (s.kind == "gpt" && s.gpt.moe.enabled())
    input_error("model.gpt.moe.every", std::to_string(s.gpt.moe.every),
                app + " trains the dense GPT (a mixture of experts: partrain-ref, partrain-dp, partrain-zero, partrain-ep)");
}

std::string describe(const ModelSpec& s) {
  if (s.kind == "gpt")
    return "gpt(V=" + std::to_string(s.gpt.vocab) + ",T=" + std::to_string(s.gpt.seq_len) +
           ",L=" + std::to_string(s.gpt.layers) + ",C=" + std::to_string(s.gpt.channels) +
           ",H=" + std::to_string(s.gpt.heads) +
           (s.gpt.moe.enabled() ? ",MoE every " + std::to_string(s.gpt.moe.every) + ": E=" +
                                      std::to_string(s.gpt.moe.experts) + ",k=" + std::to_string(s.gpt.moe.top_k)
                                : std::string()) +
           ")";
  if (s.kind == "nmt")
    return "nmt(V=" + std::to_string(s.nmt.vocab) + ",E=" + std::to_string(s.nmt.embed) +
           ",H=" + std::to_string(s.nmt.hidden) + ",Le=" + std::to_string(s.nmt.enc_layers) +
           ",Ld=" + std::to_string(s.nmt.dec_layers) + ",S=" + std::to_string(s.nmt.min_len) + "-" +
           std::to_string(s.nmt.max_len) + ")";
  if (s.kind == "sparse_mlp") {
    std::string w;
    for (auto x : s.sparse.widths) w += "-" + std::to_string(x);
    return "sparse_mlp(F=" + std::to_string(s.sparse.tables) + "x" + std::to_string(s.sparse.rows) +
           "x" + std::to_string(s.sparse.dim) + ",bag=" + std::to_string(s.sparse.bag) +
           ",dense=" + std::to_string(s.sparse.dense) + ",mlp " + std::to_string(s.sparse.concat_width()) + w + "-2)";
  }
  std::string w;
  for (auto x : s.mlp.widths) w += (w.empty() ? "" : "-") + std::to_string(x);
  return "mlp(" + w + ")";
}

template std::unique_ptr<Model<float>> make_layers<float>(const ModelSpec&);
template std::unique_ptr<Model<double>> make_layers<double>(const ModelSpec&);
template std::unique_ptr<Model<bf16>> make_layers<bf16>(const ModelSpec&);
template std::unique_ptr<Model<fp16>> make_layers<fp16>(const ModelSpec&);
template std::unique_ptr<Model<float>> make_model<float>(const ModelSpec&);
template std::unique_ptr<Model<double>> make_model<double>(const ModelSpec&);
template std::unique_ptr<Model<bf16>> make_model<bf16>(const ModelSpec&);
template std::unique_ptr<Model<fp16>> make_model<fp16>(const ModelSpec&);
template std::unique_ptr<Dataset<bf16>> make_dataset<bf16>(const ModelSpec&);
template std::unique_ptr<Dataset<fp16>> make_dataset<fp16>(const ModelSpec&);
template std::unique_ptr<Dataset<float>> make_dataset<float>(const ModelSpec&);
template std::unique_ptr<Dataset<double>> make_dataset<double>(const ModelSpec&);

}  // namespace partrain::models
