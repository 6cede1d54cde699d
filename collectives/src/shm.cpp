#include "shm.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"
#include "reduce.hpp"

namespace partrain::coll {

namespace {
/// The last-level cache this core shares: the highest-level cache sysfs lists for cpu0 (glibc's sysconf reports
/// the whole package's L3 on AMD EPYC guests: 256 MiB where sysfs says 32 MiB); else sysconf; else 32 MiB.
std::int64_t last_level_cache_bytes() {
  int best_level = 0;
  std::int64_t best = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size");
    int level = 0;
    std::int64_t v = 0;
    char unit = 0;
    if (!(level_file >> level) || !(size_file >> v >> unit) || v <= 0 || level <= best_level) continue;
    best_level = level;
    best = unit == 'M' ? v << 20 : unit == 'K' ? v << 10 : v;
  }
  if (best > 0) return best;
  const long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return v > 0 ? std::int64_t(v) : std::int64_t(32) << 20;
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
        dt_(dt), rop_(rop), root_(root), ctr_(ctr), es_(std::int64_t(size_of(dt))), ce_(node.chunk_bytes() / es_),
        q_(std::max<std::int64_t>(1, ce_ / node.size())), chunks_(chunk_count()), e0_(node.reserve(chunks_)),
        stream_(node.streams(count * es_)) {}

  // Three cursors, each chunk passing stage → reduce → gather in order, but different chunks at different
  // steps: a rank stages up to kStageAhead chunks ahead of what it has gathered, so it waits less for a peer.
  // Staging all 8 slots ahead evicted staged chunks before they were reduced (2.5 GB/s at every size, 2 ranks);
  // 1 ahead was slower in most runs (median 4.3 vs 8.0 GB/s at 1 MiB); between 2, 3 and 4 the noise hid any
  // difference.
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
        stage(s, ks_);
        publish(node_.staged(me, s), e);
        ++ks_;
        moved = true;
      }
      while (kr_ < ks_) {  // reduce this rank's piece
        if (reduces) {
          const std::uint64_t e = e0_ + std::uint64_t(kr_);
          const int s = int(e % ShmNode::kSlots);
          bool ready = true;
          for (int r = 0; r < n && ready; ++r) ready = epoch_reached(load(node_.staged(r, s)), e);
          if (!ready) break;
          reduce_piece(s, kr_);
          publish(node_.reduced(me, s), e);
        }
        ++kr_;
        moved = true;
      }
      while (kg_ < kr_) {  // gather the others' pieces, then mark the chunk consumed
        const std::uint64_t e = e0_ + std::uint64_t(kg_);
        const int s = int(e % ShmNode::kSlots);
        for (; next_owner_ < n; ++next_owner_)
          if (!gather_from(next_owner_, s, e, kg_)) break;
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
  /// Rank r's piece of chunk k: `len` elements from global index `first`, at element `slot` of the chunk's slot.
  /// allreduce and broadcast cut the vector into chunks of ce elements, and allreduce each chunk into balanced
  /// pieces; reduce_scatter and allgather take the k-th q = ce/n elements of every rank's block, so that every
  /// rank has a piece in every chunk (cutting the vector itself would leave all ranks but one idle per chunk:
  /// allgather ran below MPI_Allgather at 16 MiB that way).
  struct Piece {
    std::int64_t first, len, slot;
  };
  Piece piece(int r, std::int64_t k) const {
    const int n = node_.size();
    if (op_ == ShmOp::Allreduce || op_ == ShmOp::Broadcast) {
      const std::int64_t lo = k * ce_, m = std::min(count_, lo + ce_) - lo;
      if (op_ == ShmOp::Broadcast) return {lo, m, 0};
      return {lo + block_offset(m, n, r), block_count(m, n, r), block_offset(m, n, r)};
    }
    const std::int64_t bc = block_count(count_, n, r), at = std::min(bc, k * q_);
    return {block_offset(count_, n, r) + at, std::min(bc, at + q_) - at, r * q_};
  }
  std::int64_t chunk_count() const {
    if (count_ == 0) return 0;
    if (op_ == ShmOp::Allreduce || op_ == ShmOp::Broadcast) return (count_ + ce_ - 1) / ce_;
    return (block_count(count_, node_.size(), 0) + q_ - 1) / q_;  // block 0 is the largest
  }
  /// Element i of this rank's input: send holds the whole vector, except for allgather (this rank's block).
  const char* input(std::int64_t i) const {
    return send_ + (op_ == ShmOp::Allgather ? i - block_offset(count_, node_.size(), node_.rank()) : i) * es_;
  }

  /// Copies into this rank's staged slot what the others will read of its input for chunk k: the pieces they
  /// reduce (allreduce, reduce_scatter; this rank reads its own piece straight from its input), its piece
  /// (allgather) or the whole chunk (the broadcast root).
  void stage(int s, std::int64_t k) {
    const int n = node_.size(), me = node_.rank();
    char* slot = node_.staged_data(me, s);
    auto put = [&](const Piece& p, const char* src) {
      if (p.len > 0) copy_bytes(slot + p.slot * es_, src, p.len * es_);
      ctr_.bytes_sent += p.len * es_;
    };
    if (op_ == ShmOp::Allreduce || op_ == ShmOp::ReduceScatter) {
      for (int r = 0; r < n; ++r)
        if (r != me) put(piece(r, k), input(piece(r, k).first));
    } else if (op_ == ShmOp::Allgather) {
      put(piece(me, k), input(piece(me, k).first));
    } else if (me == root_) {
      put(piece(me, k), recv_ + piece(me, k).first * es_);  // broadcast: the root's data is in recv
    }
  }

  /// Reduces this rank's piece of chunk k over all ranks in rank order — its own input read in place, the
  /// others' from their staged slots — into its output and, for allreduce, into its result slot for the others.
  void reduce_piece(int s, std::int64_t k) {
    const int n = node_.size(), me = node_.rank();
    const Piece p = piece(me, k);
    if (p.len <= 0) return;
    srcs_.clear();
    for (int r = 0; r < n; ++r) srcs_.push_back(r == me ? input(p.first) : node_.staged_data(r, s) + p.slot * es_);
    dsts_.clear();
    if (op_ == ShmOp::Allreduce) {
      dsts_.push_back(recv_ + p.first * es_);
      if (n > 1) dsts_.push_back(node_.result_data(me, s) + p.slot * es_);
    } else {  // reduce_scatter: recv holds this rank's block (or, in place, the whole vector)
      dsts_.push_back(recv_ + (p.first - (send_ == recv_ ? 0 : block_offset(count_, n, me))) * es_);
    }
    reduce_many(dt_, rop_, dsts_, srcs_, p.len, stream_);
    ctr_.bytes_received += p.len * es_ * (n - 1);
    if (op_ == ShmOp::Allreduce) ctr_.bytes_sent += p.len * es_;
  }

  /// Copies owner r's piece of chunk k into the output once r has published it; false if not yet.
  bool gather_from(int r, int s, std::uint64_t e, std::int64_t k) {
    const int me = node_.rank();
    const Piece p = piece(r, k);
    const char* src = nullptr;
    if (op_ == ShmOp::ReduceScatter) return true;
    if (op_ == ShmOp::Allreduce) {
      if (r == me) return true;  // reduce_piece wrote it
      if (!epoch_reached(load(node_.reduced(r, s)), e)) return false;
      src = node_.result_data(r, s) + p.slot * es_;
    } else if (r == me) {  // allgather: straight from the input unless in place; broadcast: nothing to do
      if (op_ == ShmOp::Allgather && input(p.first) != recv_ + p.first * es_ && p.len > 0)
        (stream_ ? stream_copy : copy_bytes)(recv_ + p.first * es_, input(p.first), p.len * es_);
      return true;
    } else {
      if (op_ == ShmOp::Broadcast && r != root_) return true;
      if (!epoch_reached(load(node_.staged(r, s)), e)) return false;
      src = node_.staged_data(r, s) + p.slot * es_;
    }
    if (p.len > 0) (stream_ ? stream_copy : copy_bytes)(recv_ + p.first * es_, src, p.len * es_);
    ctr_.bytes_received += p.len * es_;
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
  std::int64_t es_, ce_, q_, chunks_;  ///< element size; elements per chunk, per rank's piece of one; chunks
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
