#include "shm.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"
#include "reduce.hpp"

namespace partrain::coll {

namespace {
/// The last-level cache this core shares, from sysfs (glibc's sysconf reports the whole package's L3 on AMD
/// EPYC guests: 256 MiB where sysfs says 32 MiB); 32 MiB if neither says.
std::int64_t last_level_cache_bytes() {
  std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index3/size");
  std::int64_t v = 0;
  char unit = 0;
  if (f >> v >> unit && v > 0) return unit == 'M' ? v << 20 : unit == 'K' ? v << 10 : v;
  v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return v > 0 ? v : std::int64_t(32) << 20;
}
}  // namespace

ShmNode::ShmNode(MPI_Comm comm, std::int64_t chunk_bytes, std::uint64_t first_epoch)
    : chunk_(std::max<std::int64_t>(1, (chunk_bytes + kPage - 1) / kPage) * kPage),
      llc_bytes_(last_level_cache_bytes()), next_epoch_(first_epoch) {
  PARTRAIN_MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  PARTRAIN_MPI_CHECK(MPI_Comm_size(comm, &size_));
  // kPage more than needed: each rank's part is used from its first page boundary on.
  const MPI_Aint bytes = MPI_Aint(kPage + kFlagBytes) + MPI_Aint(2 * kSlots) * MPI_Aint(chunk_);
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");  // each rank's part on its own pages (NUMA locality)
  char* mine = nullptr;
  PARTRAIN_MPI_CHECK(MPI_Win_allocate_shared(bytes, 64, info, comm, &mine, &win_));
  MPI_Info_free(&info);
  base_.resize(std::size_t(size_));
  for (int r = 0; r < size_; ++r) {
    MPI_Aint sz = 0;
    int disp = 0;
    char* p = nullptr;
    PARTRAIN_MPI_CHECK(MPI_Win_shared_query(win_, r, &sz, &disp, &p));
    base_[std::size_t(r)] = p + (kPage - reinterpret_cast<std::uintptr_t>(p) % kPage) % kPage;
  }
  // Every flag starts one before the first epoch: "nothing staged, reduced or consumed yet".
  for (auto& f : area(rank_).flags) new (&f.v) std::atomic<std::uint64_t>(first_epoch - 1);
  std::memset(staged_data(rank_, 0), 0, std::size_t(2 * kSlots) * std::size_t(chunk_));  // pre-touch
  mine_ = mine;
  memory_track_external("comm/shm_slots", mine, std::int64_t(bytes));
  PARTRAIN_MPI_CHECK(MPI_Barrier(comm));  // once, at construction: every rank's flags initialised
}

ShmNode::~ShmNode() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (mine_) memory_untrack_external(mine_);
  if (!finalized && win_ != MPI_WIN_NULL) MPI_Win_free(&win_);
}

namespace {

std::uint64_t load(ShmFlag& f) { return f.v.load(std::memory_order_acquire); }
void publish(ShmFlag& f, std::uint64_t e) { f.v.store(e, std::memory_order_release); }

class ShmRequest : public RequestState {
 public:
  ShmRequest(ShmNode& node, ShmOp op, const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp rop,
             int root, OpCounters& ctr)
      : node_(node), op_(op), send_(static_cast<const char*>(send)), recv_(static_cast<char*>(recv)), count_(count),
        dt_(dt), rop_(rop), root_(root), ctr_(ctr), es_(std::int64_t(size_of(dt))),
        ce_(node.chunk_bytes() / es_), chunks_(count == 0 ? 0 : (count + ce_ - 1) / ce_),
        e0_(node.reserve(chunks_)), stream_(node.streams(count * es_)) {}

  // Three cursors, each chunk passing stage → reduce → gather in order, but different chunks at different
  // steps: a rank stages up to kStageAhead chunks ahead of what it has gathered, so it waits less for a peer.
  // Staging all 8 slots ahead evicted staged chunks before they were reduced (2.5 GB/s at every size, 2 ranks);
  // between 1, 2 and 3 ahead this VM's run-to-run noise (±50% that hour) hid any difference: 2 is a guess.
  static constexpr std::int64_t kStageAhead = 2;
  bool test() override {
    const int n = node_.size(), me = node_.rank();
    const bool reduces = op_ == ShmOp::Allreduce || op_ == ShmOp::ReduceScatter;
    for (bool moved = true; moved;) {
      moved = false;
      while (ks_ < chunks_ && ks_ < kg_ + kStageAhead) {  // stage
        const std::uint64_t e = e0_ + std::uint64_t(ks_);
        const int s = int(e % ShmNode::kSlots);
        bool free = true;
        for (int r = 0; r < n && free; ++r) free = epoch_reached(load(node_.consumed(r, s)), e - ShmNode::kSlots);
        if (!free) break;
        const std::int64_t lo = ks_ * ce_;
        stage(s, lo, std::min(count_, lo + ce_));
        publish(node_.staged(me, s), e);
        ++ks_;
        moved = true;
      }
      while (kr_ < ks_) {  // reduce this rank's share
        if (reduces) {
          const std::uint64_t e = e0_ + std::uint64_t(kr_);
          const int s = int(e % ShmNode::kSlots);
          bool ready = true;
          for (int r = 0; r < n && ready; ++r) ready = epoch_reached(load(node_.staged(r, s)), e);
          if (!ready) break;
          const std::int64_t lo = kr_ * ce_;
          reduce_share(s, lo, std::min(count_, lo + ce_));
          publish(node_.reduced(me, s), e);
        }
        ++kr_;
        moved = true;
      }
      while (kg_ < kr_) {  // gather the others' parts, then mark the chunk consumed
        const std::uint64_t e = e0_ + std::uint64_t(kg_);
        const int s = int(e % ShmNode::kSlots);
        const std::int64_t lo = kg_ * ce_, hi = std::min(count_, lo + ce_);
        for (; next_owner_ < n; ++next_owner_)
          if (!gather_from(next_owner_, s, e, lo, hi)) break;
        if (next_owner_ < n) break;
        publish(node_.consumed(me, s), e);
        next_owner_ = 0;
        ++kg_;
        moved = true;
      }
    }
    if (kg_ < chunks_) return false;
    if (stream_) stream_fence();  // the non-temporal stores into recv land before the caller reads it
    return true;
  }

 private:
  /// [a, b) of the chunk [lo, hi) that rank r owns: balanced split (allreduce) or its block (the others).
  void part(int r, std::int64_t lo, std::int64_t hi, std::int64_t& a, std::int64_t& b) const {
    const int n = node_.size();
    if (op_ == ShmOp::Allreduce) {
      a = lo + block_offset(hi - lo, n, r);
      b = a + block_count(hi - lo, n, r);
    } else {
      a = std::max(lo, block_offset(count_, n, r));
      b = std::min(hi, block_offset(count_, n, r) + block_count(count_, n, r));
      if (b < a) b = a;
    }
  }

  /// Copies into this rank's staged slot what the others will read of its input for the chunk [lo, hi): the
  /// parts they reduce (allreduce, reduce_scatter; this rank reads its own part straight from its input), its
  /// block (allgather) or the whole chunk (the broadcast root).
  void stage(int s, std::int64_t lo, std::int64_t hi) {
    const int me = node_.rank();
    char* slot = node_.staged_data(me, s);
    if (op_ == ShmOp::Allreduce || op_ == ShmOp::ReduceScatter) {
      std::int64_t a, b;
      part(me, lo, hi, a, b);
      if (b <= a) a = b = hi;
      if (a > lo) copy_bytes(slot, send_ + lo * es_, (a - lo) * es_);
      if (hi > b) copy_bytes(slot + (b - lo) * es_, send_ + b * es_, (hi - b) * es_);
      ctr_.bytes_sent += (hi - lo - (b - a)) * es_;
      return;
    }
    std::int64_t a = lo, b = hi, first = 0;  // `first`: global index of src's first element
    const char* src = recv_;                 // broadcast: the root's data is in recv
    if (op_ == ShmOp::Allgather) {
      part(me, lo, hi, a, b);
      src = send_;  // which holds only this rank's block
      first = block_offset(count_, node_.size(), me);
    } else if (me != root_) {
      return;
    }
    if (b > a) copy_bytes(slot + (a - lo) * es_, src + (a - first) * es_, (b - a) * es_);
    ctr_.bytes_sent += (b - a) * es_;
  }

  /// Reduces this rank's part of the chunk over all ranks in rank order — its own input read in place, the
  /// others' from their staged slots — into its output and, for allreduce, into its result slot for the others.
  void reduce_share(int s, std::int64_t lo, std::int64_t hi) {
    const int n = node_.size(), me = node_.rank();
    std::int64_t a, b;
    part(me, lo, hi, a, b);
    if (b <= a) return;
    srcs_.clear();
    for (int r = 0; r < n; ++r)
      srcs_.push_back(r == me ? send_ + a * es_ : node_.staged_data(r, s) + (a - lo) * es_);
    dsts_.clear();
    if (op_ == ShmOp::Allreduce) {
      dsts_.push_back(recv_ + a * es_);
      if (n > 1) dsts_.push_back(node_.result_data(me, s) + (a - lo) * es_);
    } else {  // reduce_scatter: recv holds this rank's block (or, in place, the whole vector)
      const std::int64_t first = block_offset(count_, n, me);
      dsts_.push_back(recv_ + (a - first) * es_ + (send_ == recv_ ? first * es_ : 0));
    }
    reduce_many(dt_, rop_, dsts_, srcs_, b - a, stream_);
    ctr_.bytes_received += (b - a) * es_ * (n - 1);
    if (op_ == ShmOp::Allreduce) ctr_.bytes_sent += (b - a) * es_;
  }

  /// Copies owner r's part of the chunk into the output once r has published it; false if not yet.
  bool gather_from(int r, int s, std::uint64_t e, std::int64_t lo, std::int64_t hi) {
    const int me = node_.rank();
    if (op_ == ShmOp::ReduceScatter) return true;
    std::int64_t a = lo, b = hi;
    const char* src = nullptr;  // where element lo of the chunk would be
    if (op_ == ShmOp::Allreduce) {
      if (r == me) return true;  // reduce_share wrote it
      if (!epoch_reached(load(node_.reduced(r, s)), e)) return false;
      part(r, lo, hi, a, b);
      src = node_.result_data(r, s);
    } else if (op_ == ShmOp::Allgather) {
      part(r, lo, hi, a, b);
      if (r == me) {  // straight from the input, unless in place
        const std::int64_t first = block_offset(count_, node_.size(), me);
        if (send_ != recv_ + first * es_ && b > a)
          copy_bytes(recv_ + a * es_, send_ + (a - first) * es_, (b - a) * es_);
        return true;
      }
      if (!epoch_reached(load(node_.staged(r, s)), e)) return false;
      src = node_.staged_data(r, s);
    } else {  // broadcast: only from the root, only to the others
      if (r != root_ || me == root_) return true;
      if (!epoch_reached(load(node_.staged(r, s)), e)) return false;
      src = node_.staged_data(r, s);
    }
    if (b > a) (stream_ ? stream_copy : copy_bytes)(recv_ + a * es_, src + (a - lo) * es_, (b - a) * es_);
    ctr_.bytes_received += (b - a) * es_;
    return true;
  }

  ShmNode& node_;
  ShmOp op_;
  const char* send_;
  char* recv_;
  std::int64_t count_;
  DataType dt_;
  ReduceOp rop_;
  int root_;
  OpCounters& ctr_;
  std::int64_t es_, ce_, chunks_;
  std::uint64_t e0_;
  bool stream_;  ///< write the output with non-temporal stores
  std::int64_t ks_ = 0, kr_ = 0, kg_ = 0;  ///< next chunk to stage, to reduce, to gather
  int next_owner_ = 0;
  std::vector<const void*> srcs_;
  std::vector<void*> dsts_;
};

class ZeroCopyAllreduce : public RequestState {
 public:
  ZeroCopyAllreduce(ShmNode& node, std::vector<char*> parts, std::int64_t count, DataType dt, ReduceOp rop,
                    OpCounters& ctr)
      : node_(node), parts_(std::move(parts)), count_(count), dt_(dt), rop_(rop), ctr_(ctr),
        z_(node.reserve_zero_copy()) {
    publish(node_.zc_arrived(node_.rank()), z_);  // this rank's buffer is final
  }

  bool test() override {
    const int n = node_.size(), me = node_.rank();
    const std::int64_t es = std::int64_t(size_of(dt_));
    if (phase_ == 0) {
      if (node_.zc_published + 1 != z_) return false;  // an earlier zero-copy call on this node goes first
      for (int r = 0; r < n; ++r)
        if (!epoch_reached(load(node_.zc_arrived(r)), z_)) return false;
      const std::int64_t a = block_offset(count_, n, me), m = block_count(count_, n, me);
      if (m > 0) {
        std::vector<const void*> srcs;
        std::vector<void*> dsts;
        for (int r = 0; r < n; ++r) {
          srcs.push_back(parts_[std::size_t(r)] + a * es);
          dsts.push_back(parts_[std::size_t(r)] + a * es);
        }
        reduce_many(dt_, rop_, dsts, srcs, m);  // one pass: the sum goes into every rank's buffer
      }
      ctr_.bytes_received += m * es * (n - 1);
      ctr_.bytes_sent += m * es * (n - 1);
      publish(node_.zc_done(me), z_);
      node_.zc_published = z_;
      phase_ = 1;
    }
    for (int r = 0; r < n; ++r)
      if (!epoch_reached(load(node_.zc_done(r)), z_)) return false;
    return true;
  }

 private:
  ShmNode& node_;
  std::vector<char*> parts_;
  std::int64_t count_;
  DataType dt_;
  ReduceOp rop_;
  OpCounters& ctr_;
  std::uint64_t z_;
  int phase_ = 0;
};

}  // namespace

std::unique_ptr<RequestState> make_shm_request(ShmNode& node, ShmOp op, const void* send, void* recv,
                                               std::int64_t count, DataType dt, ReduceOp rop, int root,
                                               OpCounters& ctr) {
  return std::make_unique<ShmRequest>(node, op, send, recv, count, dt, rop, root, ctr);
}

std::unique_ptr<RequestState> make_shm_zero_copy_allreduce(ShmNode& node, std::vector<char*> parts, std::int64_t count,
                                                           DataType dt, ReduceOp rop, OpCounters& ctr) {
  return std::make_unique<ZeroCopyAllreduce>(node, std::move(parts), count, dt, rop, ctr);
}

}  // namespace partrain::coll
