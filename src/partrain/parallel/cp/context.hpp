// Context parallelism (docs/cp.md): the cp ranks of a context-parallel group split every sequence of their replica's
// batch, each holding Tl = T / cp of its tokens for the whole block — LayerNorms, MLP, embedding and loss run on
// them alone — and only attention sees the whole sequence, through the group:
//   ring     (Megatron-Core, ring attention): the sequence cut into 2·cp chunks of c = T / (2·cp) tokens; rank r holds
//            chunks r and 2·cp − 1 − r (the zigzag that gives every rank the same share of the causal triangle), and
//            the keys/values travel around the ring while each rank folds them into its queries' online softmax;
//   ulysses  (DeepSpeed-Ulysses): rank r holds the contiguous tokens r·Tl …; an all-to-all turns [Tl, H, d] into
//            [T, H/cp, d] before attention and another turns it back after.
// CpLayout says which positions a rank holds; CpContext is the group and what its transfers cost.
#pragma once

#include <cstdint>
#include <string>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/core/types.hpp"

namespace partrain::parallel {

enum class CpKind { Ring, Ulysses };
inline const char* name(CpKind k) { return k == CpKind::Ring ? "ring" : "ulysses"; }

/// Where this rank's Tl tokens of each sequence sit in it. Copied into kernels.
struct CpLayout {
  std::int64_t seq_len = 1;  ///< T
  std::int64_t local = 1;    ///< Tl = T / cp
  int size = 1, rank = 0;
  bool zigzag = false;

  CpLayout() = default;
  CpLayout(std::int64_t T, int cp, int r, bool zz) : seq_len(T), local(T / cp), size(cp), rank(r), zigzag(zz && cp > 1) {}
  std::int64_t chunk() const { return zigzag ? local / 2 : local; }  ///< c: tokens per contiguous chunk
  int chunks() const { return zigzag ? 2 : 1; }
  /// Position in the sequence of this rank's k-th chunk's first token (k < chunks()); of rank `owner`'s.
  std::int64_t chunk_start(int k, int owner) const {
    return zigzag ? (k == 0 ? owner : 2 * size - 1 - owner) * chunk() : owner * local;
  }
  /// Position of local token j (0 ≤ j < Tl).
  KOKKOS_INLINE_FUNCTION std::int64_t position(std::int64_t j) const {
    if (!zigzag) return std::int64_t(rank) * local + j;
    const std::int64_t c = local / 2;
    return j < c ? std::int64_t(rank) * c + j : std::int64_t(2 * size - 1 - rank) * c + (j - c);
  }
  /// Local index of position t, or −1 when another rank holds it.
  KOKKOS_INLINE_FUNCTION std::int64_t local_index(std::int64_t t) const {
    if (!zigzag) return t / local == rank ? t - std::int64_t(rank) * local : -1;
    const std::int64_t c = local / 2, k = t / c;
    if (k == rank) return t - k * c;
    if (k == 2 * size - 1 - rank) return c + t - k * c;
    return -1;
  }
};

/// The context-parallel group of a model's layers and what its attention cost (summed over layers and steps).
struct CpContext {
  coll::MpiCommunicator* comm = nullptr;
  CpKind kind = CpKind::Ring;
  coll::Algo algo = coll::Algo::Auto;  ///< Ulysses' all-to-alls
  CpLayout layout;
  std::int64_t bytes_sent = 0;  ///< by the attention's transfers
  double attention_s = 0;       ///< in the attention calls, communication included (fenced)
  double wait_s = 0;            ///< of it, waiting for transfers: what the overlap did not hide
  double span_s = 0;            ///< the transfers' lifetimes, post to completion (≥ their duration)
  std::int64_t calls = 0;       ///< attention forwards + backwards
  int size() const { return comm ? comm->size() : 1; }
  int rank() const { return comm ? comm->rank() : 0; }
};

/// The local tokens of every sequence: out[b·Tl + j] = full[b·T + position(j)] (ids or targets).
inline void cp_local_ids(const CpLayout& lay, const IndexView1& full, const IndexView1& out) {
  const std::int64_t T = lay.seq_len, Tl = lay.local;
  Kokkos::parallel_for(
      "partrain::cp::local_ids", Kokkos::RangePolicy<ExecSpace>(0, out.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        out(i) = full((i / Tl) * T + lay.position(i % Tl));
      });
}

/// Bytes one layer's attention sends per microbatch (forward + backward), from the formulas in docs/cp.md:
/// ring 2·B·Tl·w·(3·cp − 2)·s (keys and values around the ring forward and again backward, cp − 1 hops each, and their
/// gradients cp hops home); Ulysses 8·B·Tl·w·(cp − 1)/cp·s (q, k, v and the output forward, their gradients
/// backward). w = the rank's attention width C / t, s = the element size.
inline double cp_bytes_per_layer(CpKind k, int cp, double B, double Tl, double w, double s) {
  if (cp <= 1) return 0.0;
  return k == CpKind::Ring ? 2.0 * B * Tl * w * (3.0 * cp - 2.0) * s : 8.0 * B * Tl * w * (cp - 1.0) / cp * s;
}

}  // namespace partrain::parallel
