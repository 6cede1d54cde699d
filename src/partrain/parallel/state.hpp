// A strategy's training state as checkpoint parts (io/checkpoint.hpp): every tensor whole under the reference's name
// ("params/<name>", "optim/m/<name>", "optim/v/<name>"), each rank writing — and later reading back — the blocks it
// holds: a tensor-parallel shard's rows or columns (ShardSpec), a ZeRO block's flat range, a whole tensor. Because the
// file holds whole tensors, a checkpoint written at one layout is read at any other (the reader asks for its own
// blocks). Replicas share the writing (each writes a slice) or leave it to one of them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "partrain/io/checkpoint.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/models/optimizer.hpp"
#include "partrain/models/param_store.hpp"

namespace partrain::parallel {

/// The checkpoint's tensors for a model and optimizer: params, and optim/m (SGD with momentum, Adam) and optim/v
/// (Adam), every tensor whole — the same list on every rank and at every layout.
std::vector<io::CheckpointTensor> state_tensors(const models::ModelSpec& model, const models::OptimizerConfig& opt);

/// Hyperslabs of a parameter's local values in its whole tensor: the rows or columns of a shard (a fused tensor's
/// sections each), or the whole tensor; `local` is where each begins among the local values.
struct Slab {
  std::vector<std::int64_t> start, count;
  std::int64_t local = 0, n = 0;
};
std::vector<Slab> slabs_of(const models::ParamInfo& p);

template <class T>
class StateIo {
 public:
  /// The tensors of `store` (names, local shapes, shards) whose values are the flat buffer `values` (laid out like the
  /// store; any memory space) under `group`. `write`: this rank writes them — all of them, or with `ranks` > 1 only
  /// the `rank`-th slice of the flat buffer (replicas sharing the writing; an unsharded store) — and `keep(name)`
  /// selects which it writes (e.g. not a tensor-parallel group's replicated tensors on every rank). Reading takes
  /// every tensor of the store.
  template <class View, class S = T>
  void add(const std::string& group, const models::ParamStore<S>& store, const View& values, bool write, int rank = 0,
           int ranks = 1, std::function<bool(const std::string&)> keep = {});
  /// Flat ranges [begin, end) of an unsharded store whose values sit at `values` + offset (a ZeRO shard's blocks).
  struct Range {
    std::int64_t begin, end, offset;
  };
  template <class View, class S = T>
  void add_ranges(const std::string& group, const models::ParamStore<S>& store, const View& values,
                  const std::vector<Range>& ranges, bool write, bool read = true);
  /// Ranges whose values another object reads and writes (the ZeRO file offload's slabs): get(offset, n, out),
  /// set(offset, n, in).
  template <class S = T>
  void add_ranges_io(const std::string& group, const models::ParamStore<S>& store, const std::vector<Range>& ranges,
                     bool write, std::function<void(std::int64_t, std::int64_t, T*)> get,
                     std::function<void(std::int64_t, std::int64_t, const T*)> set) {
    buffers_.push_back({std::move(get), std::move(set)});
    add_range_pieces(group, store, ranges, int(buffers_.size()) - 1, write, true);
  }

  /// writer: the parts this rank writes, values filled; else the parts it reads back, values empty.
  std::vector<io::TensorPart> parts(bool writer) const;
  /// Puts back what read_checkpoint filled into parts(false)'s parts.
  void restore(const std::vector<io::TensorPart>& read) const;

 private:
  struct Piece {
    io::TensorPart part;                     ///< geometry (start, count), no values
    std::int64_t offset = 0, n = 0;          ///< where its values sit in the buffer
    int buffer = 0;
    bool write = false, read = true;
  };
  struct Buffer {
    std::function<void(std::int64_t, std::int64_t, T*)> get;        ///< offset, n, out
    std::function<void(std::int64_t, std::int64_t, const T*)> set;  ///< offset, n, in
  };
  template <class View>
  int buffer_of(const View& values);
  /// The pieces of flat ranges [begin, end) of `store`'s tensors, held from their `offset` in buffer `b`.
  template <class S>
  void add_range_pieces(const std::string& group, const models::ParamStore<S>& store, const std::vector<Range>& ranges,
                        int b, bool write, bool read) {
    for (const auto& r : ranges) {
      std::vector<double> zeros(std::size_t(r.end - r.begin));
      std::int64_t at = r.offset;
      for (auto& part : io::flat_range_parts(store, group, r.begin, r.end, zeros.data())) {
        std::int64_t n = 1;
        for (auto c : part.count) n *= c;
        part.values.clear();
        pieces_.push_back({part, at, n, b, write, read});
        at += n;
      }
    }
  }
  std::vector<Piece> pieces_;
  std::vector<Buffer> buffers_;
};

template <class T>
template <class View>
int StateIo<T>::buffer_of(const View& values) {
  Buffer b;
  b.get = [values](std::int64_t off, std::int64_t n, T* out) {
    auto src = Kokkos::subview(values, Kokkos::make_pair(off, off + n));
    Kokkos::View<T*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> dst(out, std::size_t(n));
    Kokkos::deep_copy(dst, src);
  };
  b.set = [values](std::int64_t off, std::int64_t n, const T* in) {
    auto dst = Kokkos::subview(values, Kokkos::make_pair(off, off + n));
    Kokkos::View<const T*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> src(in, std::size_t(n));
    Kokkos::deep_copy(dst, src);
  };
  buffers_.push_back(std::move(b));
  return int(buffers_.size()) - 1;
}

template <class T>
template <class View, class S>
void StateIo<T>::add(const std::string& group, const models::ParamStore<S>& store, const View& values, bool write,
                     int rank, int ranks, std::function<bool(const std::string&)> keep) {
  const int b = buffer_of(values);
  const std::int64_t N = store.numel(), lo = N * rank / ranks, hi = N * (rank + 1) / ranks;
  for (const auto& p : store.infos()) {
    const bool mine = write && (!keep || keep(p.name));
    if (ranks > 1 && !p.shard.sharded()) {
      // Read whole; write only the slice of the flat buffer that falls to this rank.
      for (const auto& sl : slabs_of(p)) pieces_.push_back({{group + "/" + p.name, sl.start, sl.count, {}}, p.offset + sl.local, sl.n, b, false, true});
      if (!mine) continue;
      const std::int64_t a = std::max(lo, p.offset), e = std::min(hi, p.offset + p.size);
      if (a >= e) continue;
      std::vector<double> zeros(std::size_t(e - a));
      std::int64_t at = a;  // the range's parts come in flat order, their values consecutive
      for (auto& part : io::flat_range_parts(store, group, a, e, zeros.data())) {
        std::int64_t n = 1;
        for (auto c : part.count) n *= c;
        part.values.clear();
        pieces_.push_back({part, at, n, b, true, false});
        at += n;
      }
      continue;
    }
    for (const auto& sl : slabs_of(p))
      pieces_.push_back({{group + "/" + p.name, sl.start, sl.count, {}}, p.offset + sl.local, sl.n, b, mine, true});
  }
}

template <class T>
template <class View, class S>
void StateIo<T>::add_ranges(const std::string& group, const models::ParamStore<S>& store, const View& values,
                            const std::vector<Range>& ranges, bool write, bool read) {
  add_range_pieces(group, store, ranges, buffer_of(values), write, read);
}

extern template class StateIo<float>;
extern template class StateIo<double>;

}  // namespace partrain::parallel
