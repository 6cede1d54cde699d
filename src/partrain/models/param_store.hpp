// Parameters and gradients of a model: two contiguous buffers ("params/<model>", "grads/<model>") split into
// named views, in declaration order. Names and shapes follow PyTorch (Linear weight [out, in]), so a state dump
// maps one-to-one onto the same model's state_dict. One buffer means one allreduce (or one shard) covers all.
//
// ZeRO keeps less than the whole: a store can be allocated without one or both full buffers, and each parameter's
// (or gradient's) view can be pointed at memory the strategy owns (a gathered layer, a gradient bucket) before the
// layers using it bind; init_values() gives any flat range's initial values for a shard.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "partrain/core/error.hpp"
#include "partrain/core/rng.hpp"
#include "partrain/core/types.hpp"

namespace partrain::models {

/// How a parameter is initialised: N(mean, std) from the counter RNG keyed by its name, or a constant.
struct Init {
  enum Kind { Normal, Constant } kind = Constant;
  double value = 0.0;  ///< std for Normal, the constant otherwise
  static Init normal(double std) { return {Normal, std}; }
  static Init constant(double v) { return {Constant, v}; }
};

/// Where a parameter shard sits in the whole tensor (tensor parallelism). Dimension `dim` of the global tensor
/// is cut into `sections` equal sections (the fused qkv weight has 3: q, k, v), and each section into `parts`
/// contiguous blocks; this shard holds block `index` of every section. parts = 1: not sharded.
struct ShardSpec {
  std::vector<std::int64_t> global_shape;
  int dim = 0, parts = 1, index = 0, sections = 1;

  bool sharded() const { return parts > 1; }
  /// Global flat index of local flat element `i` of a shard of shape `local`.
  std::int64_t to_global(std::int64_t i, const std::vector<std::int64_t>& local) const {
    if (!sharded()) return i;
    const std::int64_t lc = local.size() > 1 ? local[1] : 1, gc = global_shape.size() > 1 ? global_shape[1] : 1;
    std::int64_t r = i / lc, c = i % lc;
    if (dim == 0) {
      const std::int64_t per = local[0] / sections, s = r / per, w = r % per;
      r = s * (global_shape[0] / sections) + index * per + w;
    } else {
      c = index * lc + c;
    }
    return r * gc + c;
  }
};

struct ParamInfo {
  std::string name;
  std::vector<std::int64_t> shape;    ///< local shape (the shard's)
  std::int64_t offset = 0, size = 0;  ///< in elements, within the flat buffers
  Init init;
  ShardSpec shard;
};

template <class T>
class ParamStore {
 public:
  explicit ParamStore(std::string model_name = "model") : model_(std::move(model_name)) {}

  /// Registers a parameter (its local shape; `shard` says where it sits in the whole tensor); before allocate().
  void declare(const std::string& name, std::vector<std::int64_t> shape, Init init, ShardSpec shard = {}) {
    PARTRAIN_REQUIRE(!allocated_, "declare after allocate: " + name);
    PARTRAIN_REQUIRE(find(name) < 0, "parameter declared twice: " + name);
    std::int64_t size = 1;
    for (auto s : shape) size *= s;
    if (shard.global_shape.empty()) shard.global_shape = shape;
    infos_.push_back({name, std::move(shape), total_, size, init, shard});
    total_ += size;
  }

  /// Allocates the full buffers asked for (gradients zeroed) and fills the parameters from `seed`. Without a full
  /// buffer, every view of it must be set (set_param_view / set_grad_view) before a layer binds.
  void allocate(std::uint64_t seed, bool param_buffer = true, bool grad_buffer = true) {
    PARTRAIN_REQUIRE(!allocated_, "allocate twice");
    if (param_buffer) params_ = View1<T>("params/" + model_, total_);
    if (grad_buffer) grads_ = View1<T>("grads/" + model_, total_);
    allocated_ = true;
    pview_.resize(infos_.size());
    gview_.resize(infos_.size());
    if (!param_buffer) return;
    for (const auto& p : infos_) {
      auto v = flat_param(p.name);
      if (p.init.kind != Init::Normal) {
        Kokkos::deep_copy(v, T(p.init.value));
      } else if (!p.shard.sharded()) {
        fill_normal(v, CounterRng(seed, p.name), 0.0, p.init.value);
      } else {  // a shard takes the values of its elements' global indices: the same numbers as the whole tensor
        const CounterRng rng(seed, p.name);
        auto h = Kokkos::create_mirror_view(v);
        for (std::int64_t i = 0; i < p.size; ++i)
          h(i) = T(p.init.value * rng.normal(std::uint64_t(p.shard.to_global(i, p.shape))));
        Kokkos::deep_copy(v, h);
      }
    }
  }

  /// The initial values of flat elements [begin, end) (what allocate() puts there), into `out` (host memory), in
  /// the type U of `out` (a 16-bit store's fp32 master weights take the unrounded values).
  template <class U>
  void init_values(std::uint64_t seed, std::int64_t begin, std::int64_t end, U* out) const {
    for (const auto& p : infos_) {
      const std::int64_t a = std::max(begin, p.offset), b = std::min(end, p.offset + p.size);
      if (a >= b) continue;
      const CounterRng rng(seed, p.name);
      for (std::int64_t i = a; i < b; ++i) {
        const std::int64_t local = i - p.offset;
        out[i - begin] = p.init.kind != Init::Normal
                             ? U(p.init.value)
                             : U(p.init.value * rng.normal(std::uint64_t(p.shard.to_global(local, p.shape))));
      }
    }
  }

  void zero_grad() {
    if (grads_.size() > 0) Kokkos::deep_copy(grads_, T(0));
  }

  /// Points parameter (gradient) `name` at `v` (numel of the parameter), replacing the full buffer's slice; an
  /// empty view goes back to the full buffer. Layers see it when they next bind.
  void set_param_view(const std::string& name, const View1<T>& v) { set_view(pview_, name, v); }
  void set_grad_view(const std::string& name, const View1<T>& v) { set_view(gview_, name, v); }

  /// Moves the gradients into memory the caller owns (e.g. a window shared with the node's other ranks, so that
  /// data parallelism can reduce them in place with one pass); `memory` holds numel() elements and outlives the
  /// store. Layers must be bound again afterwards (Model::rebind).
  void adopt_grads(T* memory) {
    View1<T> g(memory, total_);
    Kokkos::deep_copy(g, grads_);
    grads_ = g;
  }

  const std::vector<ParamInfo>& infos() const { return infos_; }
  std::int64_t numel() const { return total_; }
  const View1<T>& params() const { return params_; }
  const View1<T>& grads() const { return grads_; }

  View1<T> flat_param(const std::string& name) const { return view(params_, pview_, name); }
  View1<T> flat_grad(const std::string& name) const { return view(grads_, gview_, name); }
  View2<T> param2(const std::string& name) const { return as2(flat_param(name), info(name)); }
  View2<T> grad2(const std::string& name) const { return as2(flat_grad(name), info(name)); }

  const ParamInfo& info(const std::string& name) const {
    int i = find(name);
    PARTRAIN_REQUIRE(i >= 0, "no such parameter: " + name);
    PARTRAIN_REQUIRE(allocated_, "parameter used before allocate: " + name);
    return infos_[i];
  }

 private:
  int find(const std::string& name) const {
    for (size_t i = 0; i < infos_.size(); ++i)
      if (infos_[i].name == name) return int(i);
    return -1;
  }
  View1<T> view(const View1<T>& buf, const std::vector<View1<T>>& over, const std::string& name) const {
    const ParamInfo& p = info(name);
    const auto& o = over[std::size_t(find(name))];
    if (o.data()) return o;
    // A store without the full buffer and no view set: a view of the right size with no memory, which the strategy
    // (ZeRO) replaces before the layer touches it.
    if (buf.size() == 0) return View1<T>(static_cast<T*>(nullptr), p.size);
    return Kokkos::subview(buf, Kokkos::make_pair(p.offset, p.offset + p.size));
  }
  void set_view(std::vector<View1<T>>& over, const std::string& name, const View1<T>& v) {
    const ParamInfo& p = info(name);
    PARTRAIN_REQUIRE(!v.data() || std::int64_t(v.extent(0)) == p.size, "view of the wrong size for " + name);
    over[std::size_t(find(name))] = v;
  }
  static View2<T> as2(const View1<T>& v, const ParamInfo& p) {
    PARTRAIN_REQUIRE(p.shape.size() == 2, "parameter is not 2D: " + p.name);
    return View2<T>(v.data(), p.shape[0], p.shape[1]);
  }

  std::string model_;
  std::vector<ParamInfo> infos_;
  std::int64_t total_ = 0;
  bool allocated_ = false;
  View1<T> params_, grads_;
  std::vector<View1<T>> pview_, gview_;  ///< per parameter: a view replacing the full buffer's slice, or empty
};

}  // namespace partrain::models
