// A model: a sequence of layers over one parameter store, ending in logits scored by softmax cross-entropy.
// Workspace holds one microbatch's activations (every layer's output, kept for backward) and layer states.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "partrain/core/error.hpp"
#include "partrain/kernels/cross_entropy.hpp"
#include "partrain/models/layer.hpp"

namespace partrain::models {

template <class T>
class Model {
 public:
  struct Workspace {
    std::int64_t rows = 0;
    std::vector<View2<T>> outputs;  ///< outputs[i] = layer i's output [rows, width_i]
    std::vector<std::unique_ptr<LayerState>> states;
    View1<T> grad_a, grad_b;  ///< ping-pong gradient buffers, rows × max width
    View1<acc_t<T>> losses;   ///< [rows], in the accumulation type (fp32 for the 16-bit types)
  };

  /// Strategy hooks at layer boundaries (DP launches a bucket's allreduce when its gradients are final; ZeRO-3
  /// gathers a layer's parameters before it runs and frees them after).
  struct Hooks {
    std::function<void()> forward_done;
    std::function<void(std::size_t layer)> before_forward;   ///< layer i's forward is next
    std::function<void(std::size_t layer)> after_forward;    ///< layer i's forward has finished
    std::function<void(std::size_t layer)> before_backward;  ///< layer i's backward is next
    std::function<void(std::size_t layer)> backward_done;    ///< layer i's backward has finished
  };

  Model(std::string kind, std::int64_t rows_per_sample)
      : kind_(std::move(kind)), rows_per_sample_(rows_per_sample), params_(kind_) {}
  virtual ~Model() = default;

  const std::string& kind() const { return kind_; }
  std::int64_t rows_per_sample() const { return rows_per_sample_; }
  ParamStore<T>& params() { return params_; }
  const ParamStore<T>& params() const { return params_; }
  const std::vector<std::unique_ptr<Layer<T>>>& layers() const { return layers_; }

  /// Allocates the parameter store (initialised from `seed`) and binds every layer. Without a full buffer (ZeRO
  /// stages 2 and 3) the layers are bound to views without memory until the strategy points them somewhere.
  void build(std::uint64_t seed, bool param_buffer = true, bool grad_buffer = true) {
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const auto first = params_.infos().size();
      declare_before(i, params_);
      layers_[i]->declare(params_);
      declared_.emplace_back(first, params_.infos().size());
    }
    params_.allocate(seed, param_buffer, grad_buffer);
    for (auto& l : layers_) l->bind(params_);
  }

  /// Binds every layer again (after the store's buffers moved, e.g. ParamStore::adopt_grads).
  void rebind() {
    for (auto& l : layers_) l->bind(params_);
  }

  /// Names of the parameters layer i binds: those it declared and those it uses from another layer (the tied head's
  /// wte).
  std::vector<std::string> bound_parameters(std::size_t i) const {
    std::vector<std::string> out;
    const auto [a, b] = declared_[i];
    for (auto k = a; k < b; ++k) out.push_back(params_.infos()[k].name);
    for (const auto& u : layers_[i]->uses()) out.push_back(u);
    return out;
  }

  /// Elements [begin, end) of the flat parameter/gradient buffers holding the parameters layer i declared
  /// (empty for a layer that declares none). A parameter's gradient is final once the backward of the layer that
  /// declared it has run: layers declare the parameters they share with later layers (the tied wte).
  std::pair<std::int64_t, std::int64_t> declared_range(std::size_t i) const {
    const auto [a, b] = declared_[i];
    if (a == b) return {0, 0};
    const auto& inf = params_.infos();
    return {inf[a].offset, inf[b - 1].offset + inf[b - 1].size};
  }

  virtual Workspace make_workspace(std::int64_t samples) const {
    Workspace ws;
    ws.rows = samples * rows_per_sample_;
    std::int64_t max_elems = 0, logit_rows = ws.rows;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const auto w = layers_[i]->out_width(), r = layers_[i]->out_rows(ws.rows);
      max_elems = std::max(max_elems, w * r);
      ws.outputs.emplace_back("act/" + layers_[i]->name() + ".out", r, w);
      ws.states.push_back(layers_[i]->make_state(ws.rows));
      logit_rows = r;
    }
    ws.grad_a = View1<T>("act/grad_a", max_elems);
    ws.grad_b = View1<T>("act/grad_b", max_elems);
    ws.losses = View1<acc_t<T>>("act/losses", logit_rows);
    return ws;
  }

  /// Forward through every layer; returns the logits view.
  View2<T> forward(const Batch<T>& batch, Workspace& ws, const Hooks& hooks = {}) {
    View2<T> x;
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (hooks.before_forward) hooks.before_forward(i);
      layers_[i]->forward(batch, x, ws.outputs[i], *ws.states[i]);
      if (hooks.after_forward) hooks.after_forward(i);
      x = ws.outputs[i];
    }
    return x;
  }

  /// Sum of the per-row losses of the batch (no gradients).
  virtual double loss_sum(const Batch<T>& batch, Workspace& ws) {
    auto logits = forward(batch, ws);
    return loss(logits, batch.targets, ws.losses) + aux_loss_sum(ws);
  }
  /// Σ of the layers' own loss terms for the microbatch in `ws` (after its forward): the MoE load-balancing loss.
  double aux_loss_sum(const Workspace& ws) const {
    double a = 0;
    for (std::size_t i = 0; i < layers_.size(); ++i) a += layers_[i]->aux_loss(*ws.states[i]);
    return a;
  }

  /// Σ of the per-row softmax cross-entropies of the logits. Overridden where the logits are sharded.
  virtual double loss(const View2<T>& logits, const IndexView1& targets, const View1<acc_t<T>>& losses) {
    kernels::cross_entropy_forward(logits, targets, losses);
    return kernels::cross_entropy_sum(losses);
  }
  /// The same, and dlogits = scale·(softmax − onehot) (may alias logits).
  virtual double loss_and_grad(const View2<T>& logits, const IndexView1& targets, acc_t<T> scale,
                               const View1<acc_t<T>>& losses, const View2<T>& dlogits) {
    kernels::cross_entropy_forward_backward(logits, targets, scale, losses, dlogits);
    return kernels::cross_entropy_sum(losses);
  }
  /// Completes gradients that are partial after backward (e.g. replicated parameters that saw only a sequence
  /// shard under sequence parallelism). Trainers call it once per step, after backward.
  void finalize_grads() { finalize_grads_in(params_); }
  /// The same for a store holding some of this model's layers (a pipeline stage's).
  virtual void finalize_grads_in(ParamStore<T>& /*ps*/) {}
  /// The same on an fp32 copy of a 16-bit store's gradients, laid out like `ps` (gradients reduced in fp32: the
  /// optimizer reads that copy).
  virtual void finalize_grads_wide(const ParamStore<T>& /*ps*/, const View1<acc_t<T>>& /*grads*/) {}

  // ---- for strategies that cut the model apart (pipeline stages) ----
  /// Parameters declared by the first layer and used again by the last (GPT's tied wte): a stage holding the last
  /// layer but not the first declares its own copy, and the two copies' gradients are summed between the stages.
  virtual std::vector<std::string> tied_parameters() const { return {}; }
  /// Layers [first, last) are the repeated body a pipeline partitions (GPT: the blocks, between embedding and head).
  virtual std::pair<std::size_t, std::size_t> body_layers() const { return {0, layers_.size()}; }
  /// Moves layers [first, last) out of a model that is not built (the layer slots are left empty).
  std::vector<std::unique_ptr<Layer<T>>> take_layers(std::size_t first, std::size_t last) {
    PARTRAIN_REQUIRE(declared_.empty(), "take_layers on a model that is built");
    std::vector<std::unique_ptr<Layer<T>>> out;
    for (std::size_t i = first; i < last; ++i) out.push_back(std::move(layers_[i]));
    return out;
  }

  /// Forward, loss and backward for one microbatch; gradients of (Σ losses)·loss_scale are ACCUMULATED into
  /// params().grads(). loss_scale = 1/(global rows) makes the loss a mean over the global batch (mixed precision
  /// multiplies it by the loss scaler's factor, and the optimizer divides the gradients by that again).
  /// Returns the sum of the microbatch's per-row losses.
  /// (The NMT model, not a chain of layers, overrides this, make_workspace and loss_sum.)
  virtual double forward_backward(const Batch<T>& batch, Workspace& ws, double loss_scale, const Hooks& hooks = {}) {
    auto logits = forward(batch, ws, hooks);
    if (hooks.forward_done) hooks.forward_done();
    const auto nl = layers_.size();
    View2<T> dlogits(ws.grad_a.data(), ws.outputs[nl - 1].extent(0), layers_[nl - 1]->out_width());
    const double loss =
        loss_and_grad(logits, batch.targets, acc_t<T>(loss_scale), ws.losses, dlogits) + aux_loss_sum(ws);
    for (auto& st : ws.states) st->loss_grad_scale = loss_scale;
    View1<T> cur = ws.grad_a, other = ws.grad_b;
    for (size_t i = nl; i-- > 0;) {
      View2<T> dy(cur.data(), ws.outputs[i].extent(0), layers_[i]->out_width());
      View2<T> x = i > 0 ? ws.outputs[i - 1] : View2<T>();
      View2<T> dx = i > 0 ? View2<T>(other.data(), x.extent(0), x.extent(1)) : View2<T>();
      if (hooks.before_backward) hooks.before_backward(i);
      layers_[i]->backward(batch, x, dy, dx, *ws.states[i]);
      if (hooks.backward_done) hooks.backward_done(i);
      std::swap(cur, other);
    }
    return loss;
  }

  /// Bytes of activation memory a step on `samples` samples allocates (every layer's output, state and backward
  /// scratch, the workspace's two gradient buffers and its losses): what the tracker counts under "act/". Negative
  /// when a layer cannot say.
  double activation_bytes(std::int64_t samples) const {
    const std::int64_t rows = samples * rows_per_sample_;
    double e = 0, widest = 0, last_rows = double(rows);
    for (const auto& l : layers_) {
      const double a = l->activation_elements(rows);
      if (a < 0) return -1.0;
      e += a;
      widest = std::max(widest, double(l->out_rows(rows)) * double(l->out_width()));
      last_rows = double(l->out_rows(rows));
    }
    return double(sizeof(T)) * (e + 2 * widest) + double(sizeof(acc_t<T>)) * last_rows;
  }

  /// Forward FLOPs of a microbatch of `samples` samples (a training step is about 3× this).
  virtual double forward_flops(std::int64_t samples) const {
    double f = 0;
    for (const auto& l : layers_) f += l->forward_flops(samples * rows_per_sample_);
    return f;
  }

 protected:
  /// Called by build() before layer i declares its parameters (a pipeline stage declares a tied copy there).
  virtual void declare_before(std::size_t /*layer*/, ParamStore<T>& /*ps*/) {}

  std::string kind_;
  std::int64_t rows_per_sample_;
  ParamStore<T> params_;
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<std::pair<std::size_t, std::size_t>> declared_;  ///< per layer: [first, end) in params_.infos()
};

}  // namespace partrain::models
