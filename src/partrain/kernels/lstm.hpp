// LSTM cell, PyTorch's gate order and equations (torch.nn.LSTMCell):
//   g = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh            [B, 4H], column blocks i | f | g | o
//   i = σ(g_i), f = σ(g_f), c̃ = tanh(g_g), o = σ(g_o)
//   c' = f ⊙ c + i ⊙ c̃,   h' = o ⊙ tanh(c')
// Backward, given dh' and dc' (the latter from the next step, may be zero):
//   dc_tot = dc' + dh' ⊙ o ⊙ (1 − tanh² c')
//   do = dh' ⊙ tanh c',  di = dc_tot ⊙ c̃,  df = dc_tot ⊙ c,  dc̃ = dc_tot ⊙ i,   dc = dc_tot ⊙ f
//   dg = [di·i(1−i), df·f(1−f), dc̃·(1−c̃²), do·o(1−o)]
//   dx = dg·W_ih, dh = dg·W_hh, dW_ih += dgᵀ·x, dW_hh += dgᵀ·h, db_ih += Σ dg, db_hh += Σ dg
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"
#include "partrain/kernels/bias.hpp"
#include "partrain/kernels/gemm.hpp"

namespace partrain::kernels {

template <class T>
struct LstmWeights {
  View2<T> w_ih;  ///< [4H, I]
  View2<T> w_hh;  ///< [4H, H]
  View1<T> b_ih;  ///< [4H]
  View1<T> b_hh;  ///< [4H]
};

template <class T>
KOKKOS_INLINE_FUNCTION T sigmoid(T x) {
  return T(1) / (T(1) + kmath::exp(-x));
}

/// The forward cell's pointwise work on the gates' products `gates` ([B, 4H], overwritten by i | f | c̃ | o): the
/// biases, 3 sigmoids and 2 tanh per hidden unit, the new cell and hidden state.
template <class T>
void lstm_gates_forward(const View2<T>& gates, const View1<T>& b_ih, const View1<T>& b_hh, const View2<T>& c,
                        const View2<T>& c_next, const View2<T>& h_next) {
  using A = acc_t<T>;  // 16-bit storage computes in fp32 and stores once
  const std::int64_t H = c.extent(1);
  Kokkos::parallel_for(
      "partrain::lstm::forward", Kokkos::RangePolicy<ExecSpace>(0, gates.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        for (std::int64_t j = 0; j < H; ++j) {
          const A gi = sigmoid(A(gates(n, j)) + A(b_ih(j)) + A(b_hh(j)));
          const A gf = sigmoid(A(gates(n, H + j)) + A(b_ih(H + j)) + A(b_hh(H + j)));
          const A gg = kmath::tanh(A(gates(n, 2 * H + j)) + A(b_ih(2 * H + j)) + A(b_hh(2 * H + j)));
          const A go = sigmoid(A(gates(n, 3 * H + j)) + A(b_ih(3 * H + j)) + A(b_hh(3 * H + j)));
          const A cn = gf * A(c(n, j)) + gi * gg;
          gates(n, j) = T(gi);
          gates(n, H + j) = T(gf);
          gates(n, 2 * H + j) = T(gg);
          gates(n, 3 * H + j) = T(go);
          c_next(n, j) = T(cn);
          h_next(n, j) = T(go * kmath::tanh(cn));
        }
      });
}

/// The backward cell's pointwise work: dgates ([B, 4H]) and dc from dh', dc' and the forward's gates and cells, then
/// the biases' gradients (the column sums of dgates, accumulated).
template <class T>
void lstm_gates_backward(const View2<T>& dh_next, const View2<T>& dc_next, const View2<T>& c, const View2<T>& gates,
                         const View2<T>& c_next, const View2<T>& dgates, const View2<T>& dc, const View1<T>& db_ih,
                         const View1<T>& db_hh) {
  using A = acc_t<T>;
  const std::int64_t H = c.extent(1);
  Kokkos::parallel_for(
      "partrain::lstm::backward", Kokkos::RangePolicy<ExecSpace>(0, gates.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        for (std::int64_t j = 0; j < H; ++j) {
          const A gi = A(gates(n, j)), gf = A(gates(n, H + j)), gg = A(gates(n, 2 * H + j)), go = A(gates(n, 3 * H + j));
          const A tc = kmath::tanh(A(c_next(n, j)));
          const A dhn = A(dh_next(n, j));
          const A dct = A(dc_next(n, j)) + dhn * go * (A(1) - tc * tc);
          dgates(n, j) = T(dct * gg * gi * (A(1) - gi));
          dgates(n, H + j) = T(dct * A(c(n, j)) * gf * (A(1) - gf));
          dgates(n, 2 * H + j) = T(dct * gi * (A(1) - gg * gg));
          dgates(n, 3 * H + j) = T(dhn * tc * go * (A(1) - go));
          dc(n, j) = T(dct * gf);
        }
      });
  bias_backward(dgates, db_ih);
  bias_backward(dgates, db_hh);
}

/// Forward of one cell: x [B, I], h, c [B, H] → gates [B, 4H] saved post-activation (i, f, c̃, o); c_next, h_next:
/// [B, H].
template <class T>
void lstm_cell_forward(const View2<T>& x, const View2<T>& h, const View2<T>& c, const LstmWeights<T>& w,
                       const View2<T>& gates, const View2<T>& c_next, const View2<T>& h_next) {
  gemm('N', 'T', acc_t<T>(1), x, w.w_ih, acc_t<T>(0), gates);
  gemm('N', 'T', acc_t<T>(1), h, w.w_hh, acc_t<T>(1), gates);
  lstm_gates_forward(gates, w.b_ih, w.b_hh, c, c_next, h_next);
}

/// Backward of one cell. dgates: [B, 4H] scratch; dx, dh, dc: [B, ·] overwritten; weight grads accumulated.
template <class T>
void lstm_cell_backward(const View2<T>& dh_next, const View2<T>& dc_next, const View2<T>& x, const View2<T>& h,
                        const View2<T>& c, const View2<T>& gates, const View2<T>& c_next, const LstmWeights<T>& w,
                        const View2<T>& dgates, const View2<T>& dx, const View2<T>& dh, const View2<T>& dc,
                        const LstmWeights<T>& dw) {
  lstm_gates_backward(dh_next, dc_next, c, gates, c_next, dgates, dc, dw.b_ih, dw.b_hh);
  using A = acc_t<T>;
  if (dx.extent(0) > 0) gemm('N', 'N', A(1), dgates, w.w_ih, A(0), dx);
  gemm('N', 'N', A(1), dgates, w.w_hh, A(0), dh);
  gemm('T', 'N', A(1), dgates, x, A(1), dw.w_ih);
  gemm('T', 'N', A(1), dgates, h, A(1), dw.w_hh);
}

}  // namespace partrain::kernels
