// Small whole-tensor helpers shared by the models: residual adds and reinterpreting [B·T, C] as [B, T, C].
#pragma once

#include <KokkosBlas1_axpby.hpp>

#include "partrain/core/types.hpp"
#include "partrain/kernels/activation.hpp"

namespace partrain::kernels {

/// y += x, elementwise over equal-shaped contiguous views (the residual connection).
template <class T>
void add_into(const View2<T>& y, const View2<T>& x) {
  KokkosBlas::axpy(T(1), flat(x), flat(y));
}

/// The rows of a [B·T, C] activation as [B, T, C] (no copy).
template <class T>
View3<T> as_sequences(const View2<T>& v, std::int64_t B, std::int64_t Tn) {
  return View3<T>(v.data(), B, Tn, v.extent(1));
}

}  // namespace partrain::kernels
