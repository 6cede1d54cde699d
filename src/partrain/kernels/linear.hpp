// Linear layer, PyTorch convention: W stored [out, in], y = x·Wᵀ + b.
//   forward:  y  = x·Wᵀ + b                 gemm(N, T)      2·N·in·out FLOPs
//   backward: dx = dy·W   (overwritten)     gemm(N, N)      2·N·in·out
//             dW += dyᵀ·x                   gemm(T, N)      2·N·in·out
//             db += Σ_rows dy
// The backward also comes in two halves for zero-bubble pipelines: linear_backward_input (dx, on the critical path)
// and linear_backward_weight (dW, db, which can wait), together equal to linear_backward.
#pragma once

#include "partrain/core/types.hpp"
#include "partrain/kernels/bias.hpp"
#include "partrain/kernels/gemm.hpp"

namespace partrain::kernels {

/// x: [N, in]; W: [out, in]; b: [out] (size 0 for none); y: [N, out].
template <class T>
void linear_forward(const View2<T>& x, const View2<T>& W, const View1<T>& b, const View2<T>& y) {
  gemm<T>('N', 'T', 1, x, W, 0, y);
  if (b.extent(0) > 0) bias_add(y, b);
}

/// dx (if non-empty) = dy·W; dW += dyᵀ·x; db (if non-empty) += column sums of dy.
template <class T>
void linear_backward(const View2<T>& dy, const View2<T>& x, const View2<T>& W, const View2<T>& dx,
                     const View2<T>& dW, const View1<T>& db) {
  if (dx.extent(0) > 0) gemm<T>('N', 'N', 1, dy, W, 0, dx);
  gemm<T>('T', 'N', 1, dy, x, 1, dW);
  if (db.extent(0) > 0) bias_backward(dy, db);
}

/// dx = dy·W: the input-gradient half of linear_backward.
template <class T>
void linear_backward_input(const View2<T>& dy, const View2<T>& W, const View2<T>& dx) {
  if (dx.extent(0) > 0) gemm<T>('N', 'N', 1, dy, W, 0, dx);
}

/// dW += dyᵀ·x; db (if non-empty) += column sums of dy: the weight-gradient half of linear_backward.
template <class T>
void linear_backward_weight(const View2<T>& dy, const View2<T>& x, const View2<T>& dW, const View1<T>& db) {
  gemm<T>('T', 'N', 1, dy, x, 1, dW);
  if (db.extent(0) > 0) bias_backward(dy, db);
}

}  // namespace partrain::kernels
