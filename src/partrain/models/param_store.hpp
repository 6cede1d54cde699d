// Parameters and gradients of a model: two contiguous buffers ("params/<model>", "grads/<model>") split into
// named views, in declaration order. Names and shapes follow PyTorch (Linear weight [out, in]), so a state dump
// maps one-to-one onto the same model's state_dict. One buffer means one allreduce (or one shard) covers all.
#pragma once

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

struct ParamInfo {
  std::string name;
  std::vector<std::int64_t> shape;
  std::int64_t offset = 0, size = 0;  ///< in elements, within the flat buffers
  Init init;
};

template <class T>
class ParamStore {
 public:
  explicit ParamStore(std::string model_name = "model") : model_(std::move(model_name)) {}

  /// Registers a parameter; call before allocate().
  void declare(const std::string& name, std::vector<std::int64_t> shape, Init init) {
    PARTRAIN_REQUIRE(!allocated_, "declare after allocate: " + name);
    PARTRAIN_REQUIRE(find(name) < 0, "parameter declared twice: " + name);
    std::int64_t size = 1;
    for (auto s : shape) size *= s;
    infos_.push_back({name, std::move(shape), total_, size, init});
    total_ += size;
  }

  /// Allocates both buffers (gradients zeroed) and fills the parameters from `seed`.
  void allocate(std::uint64_t seed) {
    PARTRAIN_REQUIRE(!allocated_, "allocate twice");
    params_ = View1<T>("params/" + model_, total_);
    grads_ = View1<T>("grads/" + model_, total_);
    allocated_ = true;
    for (const auto& p : infos_) {
      auto v = flat_param(p.name);
      if (p.init.kind == Init::Normal) fill_normal(v, CounterRng(seed, p.name), 0.0, p.init.value);
      else Kokkos::deep_copy(v, T(p.init.value));
    }
  }

  void zero_grad() { Kokkos::deep_copy(grads_, T(0)); }

  const std::vector<ParamInfo>& infos() const { return infos_; }
  std::int64_t numel() const { return total_; }
  const View1<T>& params() const { return params_; }
  const View1<T>& grads() const { return grads_; }

  View1<T> flat_param(const std::string& name) const { return slice(params_, info(name)); }
  View1<T> flat_grad(const std::string& name) const { return slice(grads_, info(name)); }
  View2<T> param2(const std::string& name) const { return as2(params_, info(name)); }
  View2<T> grad2(const std::string& name) const { return as2(grads_, info(name)); }

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
  static View1<T> slice(const View1<T>& buf, const ParamInfo& p) {
    return Kokkos::subview(buf, Kokkos::make_pair(p.offset, p.offset + p.size));
  }
  static View2<T> as2(const View1<T>& buf, const ParamInfo& p) {
    PARTRAIN_REQUIRE(p.shape.size() == 2, "parameter is not 2D: " + p.name);
    return View2<T>(buf.data() + p.offset, p.shape[0], p.shape[1]);
  }

  std::string model_;
  std::vector<ParamInfo> infos_;
  std::int64_t total_ = 0;
  bool allocated_ = false;
  View1<T> params_, grads_;
};

}  // namespace partrain::models
