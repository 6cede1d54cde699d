// Pointwise activations, forward and backward, on flat views of any shape (pass a 1D view over the data).
//   GELU, tanh approximation (GPT-2, PyTorch approximate="tanh"):
//     y = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//     dy/dx = ½·(1 + tanh u) + ½·x·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·x²)
//   ReLU: y = max(x, 0),  dy/dx = [x > 0]
// Computed in acc_t<T> (fp32 for the 16-bit types), stored in T.
#pragma once

#include "partrain/core/fast_math.hpp"
#include "partrain/core/types.hpp"
#include "partrain/kernels/pointwise.hpp"

namespace partrain::kernels {

enum class Activation { Gelu, Relu, None };

template <class T>
void gelu_forward(const View1<T>& x, const View1<T>& y) {
  pointwise("partrain::gelu::forward", x.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
    using A = acc_t<T>;
    const T* xp = x.data();
    T* yp = y.data();
    for (std::int64_t i = i0; i < i1; ++i) {
      const A v = xp[i];
      const A u = A(0.7978845608028654) * (v + A(0.044715) * v * v * v);
      yp[i] = A(0.5) * v * (A(1) + tanh_vec(u));
    }
  });
}

/// dx = dy · gelu'(x). dx may alias dy.
template <class T>
void gelu_backward(const View1<T>& x, const View1<T>& dy, const View1<T>& dx) {
  pointwise("partrain::gelu::backward", x.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
    using A = acc_t<T>;
    const T* xp = x.data();
    const T* dyp = dy.data();
    T* dxp = dx.data();
    for (std::int64_t i = i0; i < i1; ++i) {
      const A v = xp[i];
      const A u = A(0.7978845608028654) * (v + A(0.044715) * v * v * v);
      const A th = tanh_vec(u);
      const A du = A(0.7978845608028654) * (A(1) + A(3 * 0.044715) * v * v);
      dxp[i] = A(dyp[i]) * (A(0.5) * (A(1) + th) + A(0.5) * v * (A(1) - th * th) * du);
    }
  });
}

template <class T>
void relu_forward(const View1<T>& x, const View1<T>& y) {
  pointwise("partrain::relu::forward", x.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
    const T* xp = x.data();
    T* yp = y.data();
    for (std::int64_t i = i0; i < i1; ++i) yp[i] = acc_t<T>(xp[i]) > acc_t<T>(0) ? xp[i] : T(0);
  });
}

/// dx = dy · [x > 0]. dx may alias dy.
template <class T>
void relu_backward(const View1<T>& x, const View1<T>& dy, const View1<T>& dx) {
  pointwise("partrain::relu::backward", x.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
    const T* xp = x.data();
    const T* dyp = dy.data();
    T* dxp = dx.data();
    for (std::int64_t i = i0; i < i1; ++i) dxp[i] = acc_t<T>(xp[i]) > acc_t<T>(0) ? dyp[i] : T(0);
  });
}

template <class T>
void activation_forward(Activation a, const View1<T>& x, const View1<T>& y) {
  if (a == Activation::Gelu) gelu_forward(x, y);
  else if (a == Activation::Relu) relu_forward(x, y);
  else Kokkos::deep_copy(y, x);
}

template <class T>
void activation_backward(Activation a, const View1<T>& x, const View1<T>& dy, const View1<T>& dx) {
  if (a == Activation::Gelu) gelu_backward(x, dy, dx);
  else if (a == Activation::Relu) relu_backward(x, dy, dx);
  else if (dx.data() != dy.data()) Kokkos::deep_copy(dx, dy);
}

/// A flat 1D view over a contiguous 2D view's data.
template <class T>
View1<T> flat(const View2<T>& v) {
  return View1<T>(v.data(), v.size());
}

}  // namespace partrain::kernels
