// Small whole-tensor helpers shared by the models: residual adds and reinterpreting [B·T, C] as [B, T, C].
#pragma once

#include <KokkosBlas1_axpby.hpp>

#include "partrain/core/types.hpp"
#include "partrain/kernels/activation.hpp"
#include "partrain/kernels/pointwise.hpp"

namespace partrain::kernels {

/// y += x, elementwise over equal-shaped contiguous views (the residual connection).
template <class T>
void add_into(const View2<T>& y, const View2<T>& x) {
  if constexpr (is_half_v<T>) {
    T* yp = y.data();
    const T* xp = x.data();
    pointwise("partrain::add_into", std::int64_t(y.size()), KOKKOS_LAMBDA(std::int64_t a, std::int64_t e) {
      for (std::int64_t k = a; k < e; ++k) yp[k] = float(yp[k]) + float(xp[k]);
    });
  } else {
    KokkosBlas::axpy(T(1), flat(x), flat(y));
  }
}

/// y[i] += x[i] over two contiguous 1-D views of equal length (a reduced gradient block into a shard).
template <class Y, class X>
void accumulate(const char* label, const Y& y, const X& x) {
  kernels::pointwise(label, std::int64_t(y.extent(0)), KOKKOS_LAMBDA(std::int64_t a, std::int64_t e) {
    auto* d = y.data();
    const auto* s = x.data();
    using A = acc_t<std::remove_cv_t<std::remove_reference_t<decltype(*d)>>>;
    for (std::int64_t k = a; k < e; ++k) d[k] = A(d[k]) + A(s[k]);
  });
}

/// a[i] = b[i] = a[i] + b[i]: the two copies of a tied parameter's gradient made one sum.
template <class A, class B>
void sum_both(const char* label, const A& a, const B& b) {
  Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(0, a.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
    using Acc = acc_t<std::remove_cv_t<std::remove_reference_t<decltype(a(i))>>>;
    a(i) = Acc(a(i)) + Acc(b(i));
    b(i) = a(i);
  });
}

/// dst[i] = src[i] converted (one rounding where dst is narrower: a 16-bit copy of fp32 master weights, or fp32
/// from 16-bit values), over contiguous 1-D views of equal length in the default memory space.
template <class D, class S>
void convert(const char* label, const D& dst, const S& src) {
  auto* d = dst.data();
  const auto* s = src.data();
  using DT = std::remove_cv_t<std::remove_reference_t<decltype(*d)>>;
  Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(0, std::int64_t(dst.extent(0))),
                       KOKKOS_LAMBDA(std::int64_t i) { d[i] = DT(acc_t<DT>(s[i])); });
}

/// The rows of a [B·T, C] activation as [B, T, C] (no copy).
template <class T>
View3<T> as_sequences(const View2<T>& v, std::int64_t B, std::int64_t Tn) {
  return View3<T>(v.data(), B, Tn, v.extent(1));
}

}  // namespace partrain::kernels
