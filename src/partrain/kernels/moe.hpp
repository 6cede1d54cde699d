// The routing kernels of a mixture-of-experts layer (models/moe.hpp has the maths): the router's softmax and top-k
// with capacity per sequence, the permutation of token rows into expert-major dispatched rows and back (the gate-
// weighted combine), and their backward. Computed in acc_t<T>, stored once.
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"

namespace partrain::kernels {

/// probs = softmax(logits) by rows, in acc_t.
template <class T>
void router_softmax(const View2<T>& logits, const View2<acc_t<T>>& probs) {
  using A = acc_t<T>;
  const std::int64_t E = logits.extent(1);
  Kokkos::parallel_for(
      "partrain::moe::router_softmax", Kokkos::RangePolicy<ExecSpace>(0, logits.extent(0)),
      KOKKOS_LAMBDA(std::int64_t i) {
        A mx = A(logits(i, 0));
        for (std::int64_t e = 1; e < E; ++e) mx = A(logits(i, e)) > mx ? A(logits(i, e)) : mx;
        A sum = 0;
        for (std::int64_t e = 0; e < E; ++e) sum += kmath::exp(A(logits(i, e)) - mx);
        for (std::int64_t e = 0; e < E; ++e) probs(i, e) = kmath::exp(A(logits(i, e)) - mx) / sum;
      });
}

/// Top-k choices, gates, capacity and the auxiliary loss, one sequence of Tn tokens per thread:
/// choice/gate/slot [N, k] (slot: the token's place among its expert's kept rows of the sequence, −1 dropped),
/// count [S, E] (kept rows), frac [S, E] (first choices / Tn), aux [S] = coef·E·Σ_e frac·mean p.
template <class A>
void moe_route(const View2<A>& probs, std::int64_t Tn, std::int64_t k, std::int64_t cap, A coef,
               const View2<std::int64_t>& choice, const View2<A>& gate, const View2<std::int64_t>& slot,
               const View2<std::int64_t>& count, const View2<A>& frac, const View1<A>& aux) {
  const std::int64_t E = probs.extent(1), S = count.extent(0);
  Kokkos::parallel_for(
      "partrain::moe::route", Kokkos::RangePolicy<ExecSpace>(0, S), KOKKOS_LAMBDA(std::int64_t s) {
        for (std::int64_t e = 0; e < E; ++e) {
          count(s, e) = 0;
          frac(s, e) = 0;
        }
        for (std::int64_t t = 0; t < Tn; ++t) {
          const std::int64_t i = s * Tn + t;
          std::int64_t e1 = 0;
          for (std::int64_t e = 1; e < E; ++e)
            if (probs(i, e) > probs(i, e1)) e1 = e;
          choice(i, 0) = e1;
          frac(s, e1) += A(1);
          if (k == 2) {
            std::int64_t e2 = e1 == 0 ? 1 : 0;
            for (std::int64_t e = 0; e < E; ++e)
              if (e != e1 && probs(i, e) > probs(i, e2)) e2 = e;
            choice(i, 1) = e2;
            const A sum = probs(i, e1) + probs(i, e2);
            gate(i, 0) = probs(i, e1) / sum;
            gate(i, 1) = probs(i, e2) / sum;
          } else {
            gate(i, 0) = probs(i, e1);
          }
        }
        for (std::int64_t j = 0; j < k; ++j)  // first choices first, each in token order
          for (std::int64_t t = 0; t < Tn; ++t) {
            const std::int64_t i = s * Tn + t, e = choice(i, j);
            if (count(s, e) < cap) slot(i, j) = count(s, e)++;
            else slot(i, j) = -1;
          }
        A a = 0;
        for (std::int64_t e = 0; e < E; ++e) {
          A mean_p = 0;
          for (std::int64_t t = 0; t < Tn; ++t) mean_p += probs(s * Tn + t, e);
          frac(s, e) /= A(Tn);
          a += frac(s, e) * mean_p / A(Tn);
        }
        aux(s) = coef * A(E) * a;
      });
}

/// slot(i, j) += offset(sequence, expert): from the place in the sequence's group to the dispatched row.
inline void moe_place(std::int64_t Tn, const View2<std::int64_t>& choice, const View2<std::int64_t>& offset,
                      const View2<std::int64_t>& slot) {
  const std::int64_t k = slot.extent(1);
  Kokkos::parallel_for(
      "partrain::moe::place", Kokkos::RangePolicy<ExecSpace>(0, slot.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        for (std::int64_t j = 0; j < k; ++j)
          if (slot(i, j) >= 0) slot(i, j) += offset(i / Tn, choice(i, j));
      });
}

/// out(slot(i, j)) = scale(i, j) · x(i) for every kept choice (scale empty: 1).
template <class T>
void moe_scatter(const View2<T>& x, const View2<std::int64_t>& slot, const View2<acc_t<T>>& scale, const View2<T>& out) {
  using A = acc_t<T>;
  const std::int64_t k = slot.extent(1), C = x.extent(1);
  const bool scaled = scale.extent(0) > 0;
  Kokkos::parallel_for(
      "partrain::moe::scatter", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int64_t r = slot(i, j);
          if (r < 0) continue;
          const A g = scaled ? scale(i, j) : A(1);
          for (std::int64_t c = 0; c < C; ++c) out(r, c) = A(x(i, c)) * g;
        }
      });
}

/// y(i) = Σ_j scale(i, j) · rows(slot(i, j)) over kept choices (scale empty: 1); `add`: y += instead of y =.
template <class T>
void moe_gather(const View2<T>& rows, const View2<std::int64_t>& slot, const View2<acc_t<T>>& scale, const View2<T>& y,
                bool add) {
  using A = acc_t<T>;
  const std::int64_t k = slot.extent(1), C = y.extent(1);
  const bool scaled = scale.extent(0) > 0;
  Kokkos::parallel_for(
      "partrain::moe::gather", Kokkos::RangePolicy<ExecSpace>(0, y.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        for (std::int64_t c = 0; c < C; ++c) {
          A v = add ? A(y(i, c)) : A(0);
          for (std::int64_t j = 0; j < k; ++j) {
            const std::int64_t r = slot(i, j);
            if (r >= 0) v += (scaled ? scale(i, j) : A(1)) * A(rows(r, c));
          }
          y(i, c) = v;
        }
      });
}

/// dgate(i, j) = dy(i) · rows(slot(i, j)) (0 for a dropped choice).
template <class T>
void moe_gate_grad(const View2<T>& dy, const View2<T>& rows, const View2<std::int64_t>& slot, const View2<acc_t<T>>& dgate) {
  using A = acc_t<T>;
  const std::int64_t k = slot.extent(1), C = dy.extent(1);
  Kokkos::parallel_for(
      "partrain::moe::gate_grad", Kokkos::RangePolicy<ExecSpace>(0, dy.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int64_t r = slot(i, j);
          A v = 0;
          if (r >= 0)
            for (std::int64_t c = 0; c < C; ++c) v += A(dy(i, c)) * A(rows(r, c));
          dgate(i, j) = v;
        }
      });
}

/// The router's backward to its logits: dp from the gates (k = 1: gate = p; k = 2: p_j / (p_1 + p_2)) and from the
/// auxiliary loss (scale·coef·E·frac(s, e) per token of sequence s), then through the softmax.
template <class T>
void moe_router_backward(const View2<acc_t<T>>& probs, const View2<std::int64_t>& choice, const View2<acc_t<T>>& dgate,
                         const View2<acc_t<T>>& frac, std::int64_t Tn, acc_t<T> aux_scale, const View2<T>& dlogits) {
  using A = acc_t<T>;
  const std::int64_t k = choice.extent(1), E = probs.extent(1);
  Kokkos::parallel_for(
      "partrain::moe::router_backward", Kokkos::RangePolicy<ExecSpace>(0, probs.extent(0)),
      KOKKOS_LAMBDA(std::int64_t i) {
        const std::int64_t s = i / Tn, e1 = choice(i, 0);
        // dp_e = aux_scale·frac(s, e) + the gates' share; the softmax's backward: dl_e = p_e·(dp_e − Σ p·dp)
        A dp1 = dgate(i, 0), dp2 = 0;
        std::int64_t e2 = -1;
        if (k == 2) {
          e2 = choice(i, 1);
          const A p1 = probs(i, e1), p2 = probs(i, e2), sum = p1 + p2;
          const A w = (dgate(i, 0) * p1 + dgate(i, 1) * p2) / (sum * sum);
          dp1 = dgate(i, 0) / sum - w;
          dp2 = dgate(i, 1) / sum - w;
        }
        A dot = 0;
        for (std::int64_t e = 0; e < E; ++e) {
          const A dp = aux_scale * frac(s, e) + (e == e1 ? dp1 : A(0)) + (e == e2 ? dp2 : A(0));
          dot += probs(i, e) * dp;
        }
        for (std::int64_t e = 0; e < E; ++e) {
          const A dp = aux_scale * frac(s, e) + (e == e1 ? dp1 : A(0)) + (e == e2 ? dp2 : A(0));
          dlogits(i, e) = probs(i, e) * (dp - dot);
        }
      });
}

/// out(i) = in(order(i)) row by row (the exchange's regrouping between peer-major and expert-major rows).
template <class T>
void permute_rows(const View2<T>& in, const Kokkos::View<std::int64_t*, MemSpace>& order, const View2<T>& out) {
  const std::int64_t C = in.extent(1);
  Kokkos::parallel_for(
      "partrain::moe::permute_rows", Kokkos::RangePolicy<ExecSpace>(0, order.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        for (std::int64_t c = 0; c < C; ++c) out(i, c) = in(order(i), c);
      });
}
/// out(order(i)) = in(i): the inverse of permute_rows.
template <class T>
void unpermute_rows(const View2<T>& in, const Kokkos::View<std::int64_t*, MemSpace>& order, const View2<T>& out) {
  const std::int64_t C = in.extent(1);
  Kokkos::parallel_for(
      "partrain::moe::unpermute_rows", Kokkos::RangePolicy<ExecSpace>(0, order.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        for (std::int64_t c = 0; c < C; ++c) out(order(i), c) = in(i, c);
      });
}

}  // namespace partrain::kernels
