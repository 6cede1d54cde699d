// Helpers for kernel and model tests: host copies, deterministic random fills, and the central finite-difference
// gradient check used everywhere (double precision).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "partrain/core/rng.hpp"
#include "partrain/core/types.hpp"

namespace partrain::test {

template <class V>
std::vector<double> host(const V& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::vector<double> out(h.size());
  for (size_t i = 0; i < h.size(); ++i) out[i] = double(h.data()[i]);
  return out;
}

template <class V>
void set(const V& v, const std::vector<double>& values) {
  auto h = Kokkos::create_mirror_view(v);
  for (size_t i = 0; i < h.size(); ++i) h.data()[i] = typename V::non_const_value_type(values[i]);
  Kokkos::deep_copy(v, h);
}

/// Fills any view with N(0, std) keyed by `name`.
template <class V>
void randn(const V& v, const std::string& name, double std = 1.0) {
  const CounterRng rng(99, name);
  std::vector<double> vals(v.size());
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = std * rng.normal(i);
  set(v, vals);
}

template <class V>
void ints(const V& v, const std::string& name, int below) {
  const CounterRng rng(99, name);
  std::vector<double> vals(v.size());
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = double(rng.below(i, below));
  set(v, vals);
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// ‖a − b‖ / max(‖b‖, tiny)
inline double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

/// Central finite differences of the scalar `loss()` with respect to every element of `x` (or `max_elems` of
/// them spread evenly), compared with `analytic` (same shape as x, host values). Returns the relative error.
template <class V>
double fd_check(const V& x, const std::vector<double>& analytic, const std::function<double()>& loss,
                double h = 1e-5, size_t max_elems = 64) {
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  const size_t n = hx.size();
  const size_t stride = std::max<size_t>(1, n / max_elems);
  std::vector<double> num, ana;
  for (size_t i = 0; i < n; i += stride) {
    const double orig = hx.data()[i];
    hx.data()[i] = orig + h;
    Kokkos::deep_copy(x, hx);
    const double lp = loss();
    hx.data()[i] = orig - h;
    Kokkos::deep_copy(x, hx);
    const double lm = loss();
    hx.data()[i] = orig;
    Kokkos::deep_copy(x, hx);
    num.push_back((lp - lm) / (2 * h));
    ana.push_back(analytic[i]);
  }
  return rel_err(ana, num);
}

}  // namespace partrain::test
