// Megatron's parallel linear layers, PyTorch layout (weight [out, in], Y = X·Aᵀ + b), over a TpContext.
#pragma once

#include <string>

#include "partrain/kernels/linear.hpp"
#include "partrain/models/param_store.hpp"
#include "partrain/parallel/tp/mappings.hpp"

namespace partrain::parallel {

/// ColumnParallelLinear: Y = X·Aᵀ + b with A split by OUTPUT rows, A = [A_1; …; A_t], b = [b_1; …; b_t]:
/// rank i computes Y_i = X·A_iᵀ + b_i, its slice of Y's columns; no communication forward. The input enters the
/// tensor-parallel region through f (identity forward, allreduce of dX backward) — or, with sequence parallelism,
/// through an allgather of row shards (reduce-scatter of dX backward). `sections` > 1 splits each of that many
/// equal row sections (the fused q | k | v weight: every rank takes its heads of q, of k and of v).
template <class T>
class ColumnParallelLinear {
 public:
  ColumnParallelLinear(std::string name, std::int64_t in, std::int64_t out, int sections, TpContext& tp)
      : name_(std::move(name)), in_(in), out_(out), sections_(sections), tp_(&tp) {}

  std::int64_t local_out() const { return out_ / tp_->size(); }
  void declare(models::ParamStore<T>& ps, double weight_std) const {
    const int t = tp_->size(), r = tp_->rank();
    ps.declare(name_ + ".weight", {out_ / t, in_}, models::Init::normal(weight_std),
               models::ShardSpec{{out_, in_}, 0, t, r, sections_});
    ps.declare(name_ + ".bias", {out_ / t}, models::Init::constant(0.0), models::ShardSpec{{out_}, 0, t, r, sections_});
  }
  void bind(const models::ParamStore<T>& ps) {
    w_ = ps.param2(name_ + ".weight");
    dw_ = ps.grad2(name_ + ".weight");
    b_ = ps.flat_param(name_ + ".bias");
    db_ = ps.flat_grad(name_ + ".bias");
  }
  /// x_in: this rank's input (all rows, or its row shard under sequence parallelism); x_full: [rows, in] (the same
  /// view as x_in without sequence parallelism, else filled here and kept for backward); y: [rows, out/t].
  void forward(const View2<T>& x_in, const View2<T>& x_full, const View2<T>& y) {
    if (tp_->sequence_parallel) tp_allgather_rows(*tp_, x_in, x_full);
    kernels::linear_forward(x_full, w_, b_, y);
  }
  /// dy: [rows, out/t]; dx_full: [rows, in] scratch; dx_in: this rank's input gradient (overwritten; the same view
  /// as dx_full without sequence parallelism).
  void backward(const View2<T>& dy, const View2<T>& x_full, const View2<T>& dx_full, const View2<T>& dx_in) {
    kernels::linear_backward(dy, x_full, w_, dx_full, dw_, db_);
    if (tp_->sequence_parallel) tp_reduce_scatter_rows(*tp_, dx_full, dx_in);
    else tp_allreduce(*tp_, dx_full);
  }

 private:
  std::string name_;
  std::int64_t in_, out_;
  int sections_;
  TpContext* tp_;
  View2<T> w_, dw_;
  View1<T> b_, db_;
};

/// RowParallelLinear: Y = X·Aᵀ + b with A split by INPUT columns, A = [A_1 … A_t], and X = [X_1 … X_t] already
/// split by columns (the output of a ColumnParallelLinear): Y = Σ_i X_i·A_iᵀ + b. Rank i computes its partial sum;
/// g reduces them (allreduce forward, identity backward) — or, with sequence parallelism, reduce-scatters them to
/// row shards (allgather of dY backward). The bias is replicated and added after the reduction.
template <class T>
class RowParallelLinear {
 public:
  RowParallelLinear(std::string name, std::int64_t in, std::int64_t out, TpContext& tp)
      : name_(std::move(name)), in_(in), out_(out), tp_(&tp) {}

  void declare(models::ParamStore<T>& ps, double weight_std) const {
    const int t = tp_->size(), r = tp_->rank();
    ps.declare(name_ + ".weight", {out_, in_ / t}, models::Init::normal(weight_std),
               models::ShardSpec{{out_, in_}, 1, t, r, 1});
    ps.declare(name_ + ".bias", {out_}, models::Init::constant(0.0));
  }
  void bind(const models::ParamStore<T>& ps) {
    w_ = ps.param2(name_ + ".weight");
    dw_ = ps.grad2(name_ + ".weight");
    b_ = ps.flat_param(name_ + ".bias");
    db_ = ps.flat_grad(name_ + ".bias");
  }
  /// x: [rows, in/t]; y_partial: [rows, out] scratch; y: [rows, out], or this rank's row shard under sequence
  /// parallelism (the same view as y_partial without it).
  void forward(const View2<T>& x, const View2<T>& y_partial, const View2<T>& y) {
    kernels::gemm('N', 'T', T(1), x, w_, T(0), y_partial);
    if (tp_->sequence_parallel) tp_reduce_scatter_rows(*tp_, y_partial, y);
    else tp_allreduce(*tp_, y_partial);
    kernels::bias_add(y, b_);
  }
  /// dy: gradient of y (its shape); dy_full: [rows, out] scratch (the same view as dy without sequence
  /// parallelism); x: the forward input; dx: [rows, in/t] (overwritten).
  void backward(const View2<T>& dy, const View2<T>& dy_full, const View2<T>& x, const View2<T>& dx) {
    kernels::bias_backward(dy, db_);  // partial over the row shard under sequence parallelism: finalize_grads sums
    if (tp_->sequence_parallel) tp_allgather_rows(*tp_, dy, dy_full);
    kernels::gemm('N', 'N', T(1), dy_full, w_, T(0), dx);
    kernels::gemm('T', 'N', T(1), dy_full, x, T(1), dw_);
  }

 private:
  std::string name_;
  std::int64_t in_, out_;
  TpContext* tp_;
  View2<T> w_, dw_;
  View1<T> b_, db_;
};

}  // namespace partrain::parallel
