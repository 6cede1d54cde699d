#include "partrain/collectives/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <deque>

#include "algorithms.hpp"
#include "partrain/core/error.hpp"
#include "schedule.hpp"
#include "shm.hpp"
#include "vendor.hpp"

namespace partrain::coll {
namespace {
constexpr std::int64_t kSmallBytes = 16 * 1024;      // recdbl below, ring above (allreduce, RS, AG)
constexpr std::int64_t kBroadcastTree = 64 * 1024;   // tree below, chain above

void check_int_count(std::int64_t count, const char* what) {
  if (count > INT_MAX) input_error("count", std::to_string(count), std::string("too large for MPI's ") + what);
}
}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int pretend_ranks_per_node) : pool_(std::make_unique<ScratchPool>()) {
  PARTRAIN_MPI_CHECK(MPI_Comm_dup(comm, &p2p_));
  PARTRAIN_MPI_CHECK(MPI_Comm_dup(comm, &coll_));
  PARTRAIN_MPI_CHECK(MPI_Comm_rank(p2p_, &rank_));
  PARTRAIN_MPI_CHECK(MPI_Comm_size(p2p_, &size_));
  MPI_Comm node;
  PARTRAIN_MPI_CHECK(MPI_Comm_split_type(p2p_, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  if (pretend_ranks_per_node > 0) {  // pretend nodes: consecutive groups inside the real node
    MPI_Comm sub;
    PARTRAIN_MPI_CHECK(MPI_Comm_split(node, rank_ / pretend_ranks_per_node, rank_, &sub));
    PARTRAIN_MPI_CHECK(MPI_Comm_free(&node));
    node = sub;
  }
  int local = 0, local_rank = 0;
  PARTRAIN_MPI_CHECK(MPI_Comm_size(node, &local));
  PARTRAIN_MPI_CHECK(MPI_Comm_rank(node, &local_rank));
  single_node_ = local == size_;
  // Several nodes: keep the node and cross-node groups for the hierarchical allreduce, when every node has the
  // same number of ranks (checked collectively).
  int min_local = local, max_local = local;
  PARTRAIN_MPI_CHECK(MPI_Allreduce(&local, &min_local, 1, MPI_INT, MPI_MIN, p2p_));
  PARTRAIN_MPI_CHECK(MPI_Allreduce(&local, &max_local, 1, MPI_INT, MPI_MAX, p2p_));
  if (!single_node_ && min_local == max_local && local > 1) {
    node_.reset(new MpiCommunicator(node));
    node_gather_.reset(new MpiCommunicator(node));
    hier_ = std::make_unique<HierSequencer>();
    MPI_Comm cross;
    PARTRAIN_MPI_CHECK(MPI_Comm_split(p2p_, local_rank, rank_, &cross));
    cross_.reset(new MpiCommunicator(cross));
    PARTRAIN_MPI_CHECK(MPI_Comm_free(&cross));
  }
  PARTRAIN_MPI_CHECK(MPI_Comm_free(&node));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  shm_.reset();
  for (auto& b : shared_)
    if (b->win != MPI_WIN_NULL) MPI_Win_free(&b->win);
  if (coll_ != MPI_COMM_NULL) MPI_Comm_free(&coll_);
  if (p2p_ != MPI_COMM_NULL) MPI_Comm_free(&p2p_);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(int color, int key) const {
  MPI_Comm sub;
  PARTRAIN_MPI_CHECK(MPI_Comm_split(p2p_, color, key, &sub));
  auto c = std::make_unique<MpiCommunicator>(sub);
  c->set_chunk_bytes(chunk_bytes_);
  PARTRAIN_MPI_CHECK(MPI_Comm_free(&sub));
  return c;
}

void MpiCommunicator::set_chunk_bytes(std::int64_t bytes) {
  if (bytes < 8) input_error("chunk_bytes", std::to_string(bytes), "must be >= 8");
  chunk_bytes_ = bytes;
}

ShmNode& MpiCommunicator::shm() {
  if (!shm_) shm_ = std::make_unique<ShmNode>(coll_, chunk_bytes_, shm_first_epoch_);  // collective, once
  return *shm_;
}

void* MpiCommunicator::shared_buffer(std::int64_t bytes) {
  if (!single_node_) input_error("shared_buffer", std::to_string(bytes), "the communicator spans several nodes");
  auto b = std::make_unique<ShmBuffer>();
  b->bytes = bytes;
  char* mine = nullptr;
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  PARTRAIN_MPI_CHECK(MPI_Win_allocate_shared(std::max<MPI_Aint>(bytes, 1), 64, info, coll_, &mine, &b->win));
  MPI_Info_free(&info);
  b->parts.resize(std::size_t(size_));
  for (int r = 0; r < size_; ++r) {
    MPI_Aint sz = 0;
    int disp = 0;
    PARTRAIN_MPI_CHECK(MPI_Win_shared_query(b->win, r, &sz, &disp, &b->parts[std::size_t(r)]));
  }
  std::memset(mine, 0, std::size_t(bytes));
  shared_.push_back(std::move(b));
  return mine;
}

const ShmBuffer* MpiCommunicator::shared_owner(const void* p, std::int64_t bytes) const {
  const char* c = static_cast<const char*>(p);
  for (const auto& b : shared_) {
    const char* mine = b->parts[std::size_t(rank_)];
    if (c >= mine && c + bytes <= mine + b->bytes) return b.get();
  }
  return nullptr;
}

int MpiCommunicator::next_tag() {
  seq_ = (seq_ + 1) % 30000;  // MPI guarantees tags up to at least 32767
  return seq_ + 1;
}

Algo MpiCommunicator::resolve(Op op, Algo algo, std::int64_t bytes) const {
  const bool shm_op = op == Op::Allreduce || op == Op::ReduceScatter || op == Op::Allgather || op == Op::Broadcast;
  if (algo == Algo::Auto && single_node_ && size_ > 1 && shm_op) return Algo::Shm;
  if (algo == Algo::Shm && !single_node_)
    input_error("algorithm", "shm", "needs every rank of the communicator on one node");
  if (algo == Algo::Shm && size_ == 1 && implements(Algo::Shm, op)) return Algo::Ring;  // one rank: a plain copy
  if (algo == Algo::Hier && op == Op::Allreduce && !node_) return single_node_ ? Algo::Shm : Algo::Ring;
  if (algo == Algo::Auto && op == Op::Allreduce && node_ && bytes > kSmallBytes) return Algo::Hier;
  if (algo == Algo::Auto) {
    switch (op) {
      case Op::Allreduce:
      case Op::ReduceScatter:
      case Op::Allgather: return bytes <= kSmallBytes ? Algo::RecDbl : Algo::Ring;
      case Op::Broadcast: return bytes <= kBroadcastTree ? Algo::Tree : Algo::Ring;
      case Op::Alltoall: return Algo::Ring;
      case Op::Barrier: return Algo::RecDbl;
      case Op::SendRecv: return Algo::Vendor;
    }
  }
  if (!implements(algo, op))
    input_error("algorithm", name(algo), std::string("does not implement ") + name(op));
  return algo;
}

namespace {
Plan make_plan(int rank, int n, DataType dt, ReduceOp op, std::int64_t chunk_bytes) {
  Plan p;
  p.rank = rank;
  p.n = n;
  p.dt = dt;
  p.op = op;
  p.esize = size_of(dt);
  p.chunk_elems = std::max<std::int64_t>(1, chunk_bytes / std::int64_t(p.esize));
  return p;
}
}  // namespace

/// Hierarchical allreduces of one communicator in flight together (data-parallel buckets) must post their
/// sub-collectives in the same order on every rank, or the node's shm calls and the ring across nodes match the
/// wrong partners — found on the virtual cluster (tests/cluster), where buckets came out wrong. Each call gets an
/// index in posting order: its reduce-scatters go out at once on the node group, in that order; its ring across
/// nodes and its allgather (on a second node group, so that they never interleave with later reduce-scatters) go
/// out strictly in index order; testing any of them drives the earlier ones, so no wait depends on the caller
/// testing the requests in order. Calls still pipeline: bucket k + 1 reduces in the node while bucket k crosses.
struct HierSequencer {
  std::uint64_t created = 0, next_cross = 0, next_gather = 0;
  std::deque<void*> live;  // the unfinished calls (HierarchicalAllreduce), in index order
  void progress();
};

namespace {
/// Hierarchical allreduce as three requests run one after the other: shm reduce-scatter in the node (each local
/// rank gets one block), ring allreduce of that block across the nodes, shm allgather in the node.
class HierarchicalAllreduce : public RequestState {
 public:
  HierarchicalAllreduce(MpiCommunicator& node, MpiCommunicator& gather, MpiCommunicator& cross,
                        HierSequencer& seq, const void* send, void* recv, std::int64_t count, DataType dt,
                        ReduceOp op)
      : node_(node), gather_(gather), cross_(cross), seq_(seq), index_(seq.created++),
        recv_(static_cast<char*>(recv)), count_(count), dt_(dt), op_(op), es_(std::int64_t(size_of(dt))) {
    if (send != recv && count > 0) std::memcpy(recv, send, std::size_t(count * es_));
    cur_ = node_.reduce_scatter(recv_, recv_, count_, dt_, op_, Algo::Shm);
    seq_.live.push_back(this);
  }
  ~HierarchicalAllreduce() override {
    auto it = std::find(seq_.live.begin(), seq_.live.end(), static_cast<void*>(this));
    if (it != seq_.live.end()) seq_.live.erase(it);
  }
  bool test() override {
    seq_.progress();
    return stage_ == 3;
  }
  /// Moves on as far as its sub-requests and the posting order allow.
  void advance() {
    while (stage_ < 3 && cur_.test()) {
      const std::int64_t off = block_offset(count_, node_.size(), node_.rank());
      const std::int64_t n = block_count(count_, node_.size(), node_.rank());
      if (stage_ == 0) {
        if (seq_.next_cross != index_) return;
        cur_ = cross_.allreduce(recv_ + off * es_, recv_ + off * es_, n, dt_, op_, Algo::Ring);
        ++seq_.next_cross;
      } else if (stage_ == 1) {
        if (seq_.next_gather != index_) return;
        cur_ = gather_.allgather(recv_ + off * es_, recv_, count_, dt_, Algo::Shm);
        ++seq_.next_gather;
      }
      ++stage_;
    }
  }

 private:
  MpiCommunicator &node_, &gather_, &cross_;
  HierSequencer& seq_;
  std::uint64_t index_;
  char* recv_;
  std::int64_t count_;
  DataType dt_;
  ReduceOp op_;
  std::int64_t es_;
  Request cur_;
  int stage_ = 0;
};
}  // namespace

void HierSequencer::progress() {
  // in index order: an earlier call posts its next step before a later one asks whether it may
  for (std::size_t i = 0; i < live.size(); ++i) static_cast<HierarchicalAllreduce*>(live[i])->advance();
}

Request MpiCommunicator::allreduce(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                                   Algo algo) {
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  const Algo a = resolve(Op::Allreduce, algo, bytes);
  auto& ctr = counters_[Op::Allreduce];
  ++ctr.calls;
  ctr.bus_bytes += bus_bytes(Op::Allreduce, bytes, size_);
  if (a == Algo::Vendor) {
    check_int_count(count, "MPI_Iallreduce");
    auto st = std::make_unique<VendorRequest>();
    PARTRAIN_MPI_CHECK(MPI_Iallreduce(send == recv ? MPI_IN_PLACE : send, recv, int(count), mpi_type(dt),
                                      mpi_op(op, dt), coll_, &st->req));
    count_vendor(ctr, Op::Allreduce, bytes, size_);
    return std::move(Request(std::move(st)).describe("allreduce", -1));
  }
  if (a == Algo::Hier) {
    Request r(std::make_unique<HierarchicalAllreduce>(*node_, *node_gather_, *cross_, *hier_, send, recv, count, dt, op));
    r.test();
    return std::move(r.describe("allreduce", -1));
  }
  if (a == Algo::Shm) {
    if (const ShmBuffer* b = send == recv ? shared_owner(recv, bytes) : nullptr) {  // zero-copy, one pass
      const std::int64_t off = static_cast<const char*>(recv) - b->parts[std::size_t(rank_)];
      std::vector<char*> parts;
      for (char* part : b->parts) parts.push_back(part + off);
      Request r(make_shm_zero_copy_allreduce(shm(), std::move(parts), count, dt, op, ctr));
      r.test();
      return std::move(r.describe("allreduce", -1));
    }
    Request r(make_shm_request(shm(), ShmOp::Allreduce, send, recv, count, dt, op, 0, ctr));
    r.test();
    return std::move(r.describe("allreduce", -1));
  }
  Plan p = make_plan(rank_, size_, dt, op, chunk_bytes_);
  if (count > 0) {
    if (a == Algo::Ring) {
      char* tmp = p.scratch(*pool_, std::min(count, p.chunk_elems));
      ring_reduce_scatter(p, send, recv, p.at(recv, block_offset(count, size_, rank_)), count, tmp);
      ring_allgather(p, recv, count);
    } else {
      Round& first = p.new_round();
      p.copy(first, recv, send, count);
      char* tmp = p.scratch(*pool_, count);
      if (a == Algo::Tree) tree_allreduce(p, recv, count, tmp);
      else if (bytes <= kSmallBytes || count < size_) recdbl_allreduce(p, recv, count, tmp);
      else rabenseifner_allreduce(p, recv, count, tmp);
    }
  }
  auto st = std::make_unique<ScheduleRequest>(coll_, next_tag(), std::move(p), ctr);
  Request r(std::move(st));
  r.test();  // post the first round now
  return std::move(r.describe("allreduce", -1));
}

Request MpiCommunicator::reduce_scatter(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                                        Algo algo) {
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  const Algo a = resolve(Op::ReduceScatter, algo, bytes);
  auto& ctr = counters_[Op::ReduceScatter];
  ++ctr.calls;
  ctr.bus_bytes += bus_bytes(Op::ReduceScatter, bytes, size_);
  const bool in_place = send == recv;
  const std::int64_t off = block_offset(count, size_, rank_);
  Plan p = make_plan(rank_, size_, dt, op, chunk_bytes_);
  char* final_dst = in_place ? p.at(recv, off) : static_cast<char*>(recv);
  if (a == Algo::Vendor) {
    check_int_count(count, "MPI_Ireduce_scatter");
    auto st = std::make_unique<VendorRequest>();
    for (int i = 0; i < size_; ++i) st->counts.push_back(int(block_count(count, size_, i)));
    const void* input = send;
    if (in_place && bytes > 0) {  // MPI's in-place result lands at the start of the buffer; ours at the offset
      st->lease = pool_->acquire(bytes);
      std::memcpy(st->lease.data(), send, std::size_t(bytes));
      input = st->lease.data();
    }
    PARTRAIN_MPI_CHECK(MPI_Ireduce_scatter(input, final_dst, st->counts.data(), mpi_type(dt), mpi_op(op, dt), coll_,
                                           &st->req));
    count_vendor(ctr, Op::ReduceScatter, bytes, size_);
    return std::move(Request(std::move(st)).describe("reduce_scatter", -1));
  }
  if (a == Algo::Shm) {
    Request r(make_shm_request(shm(), ShmOp::ReduceScatter, send, recv, count, dt, op, 0, ctr));
    r.test();
    return std::move(r.describe("reduce_scatter", -1));
  }
  if (count > 0) {
    if (a == Algo::Ring) {
      char* tmp = p.scratch(*pool_, std::min(count, p.chunk_elems));
      char* part = in_place ? static_cast<char*>(recv) : p.scratch(*pool_, count);
      ring_reduce_scatter(p, send, part, final_dst, count, tmp);
    } else {
      char* work = static_cast<char*>(recv);
      if (!in_place) {
        work = p.scratch(*pool_, count);
        Round& first = p.new_round();
        p.copy(first, work, send, count);
      }
      recdbl_reduce_scatter(p, work, final_dst, count, p.scratch(*pool_, count));
    }
  }
  Request r(std::make_unique<ScheduleRequest>(coll_, next_tag(), std::move(p), ctr));
  r.test();
  return std::move(r.describe("reduce_scatter", -1));
}

Request MpiCommunicator::allgather(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo) {
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  const Algo a = resolve(Op::Allgather, algo, bytes);
  auto& ctr = counters_[Op::Allgather];
  ++ctr.calls;
  ctr.bus_bytes += bus_bytes(Op::Allgather, bytes, size_);
  Plan p = make_plan(rank_, size_, dt, ReduceOp::Sum, chunk_bytes_);
  char* own = p.at(recv, block_offset(count, size_, rank_));
  const bool in_place = send == own;
  if (a == Algo::Vendor) {
    check_int_count(count, "MPI_Iallgatherv");
    auto st = std::make_unique<VendorRequest>();
    for (int i = 0; i < size_; ++i) {
      st->counts.push_back(int(block_count(count, size_, i)));
      st->displs.push_back(int(block_offset(count, size_, i)));
    }
    PARTRAIN_MPI_CHECK(MPI_Iallgatherv(in_place ? MPI_IN_PLACE : send, st->counts[rank_], mpi_type(dt), recv,
                                       st->counts.data(), st->displs.data(), mpi_type(dt), coll_, &st->req));
    count_vendor(ctr, Op::Allgather, bytes, size_);
    return std::move(Request(std::move(st)).describe("allgather", -1));
  }
  if (a == Algo::Shm) {
    Request r(make_shm_request(shm(), ShmOp::Allgather, send, recv, count, dt, ReduceOp::Sum, 0, ctr));
    r.test();
    return std::move(r.describe("allgather", -1));
  }
  if (count > 0) {
    Round& first = p.new_round();
    p.copy(first, own, send, block_count(count, size_, rank_));
    if (a == Algo::Ring) ring_allgather(p, recv, count);
    else recdbl_allgather(p, recv, count);
  }
  Request r(std::make_unique<ScheduleRequest>(coll_, next_tag(), std::move(p), ctr));
  r.test();
  return std::move(r.describe("allgather", -1));
}

Request MpiCommunicator::broadcast(void* buf, std::int64_t count, DataType dt, int root, Algo algo) {
  if (root < 0 || root >= size_) input_error("root", std::to_string(root), "not a rank of the communicator");
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  const Algo a = resolve(Op::Broadcast, algo, bytes);
  auto& ctr = counters_[Op::Broadcast];
  ++ctr.calls;
  ctr.bus_bytes += bus_bytes(Op::Broadcast, bytes, size_);
  if (a == Algo::Vendor) {
    check_int_count(count, "MPI_Ibcast");
    auto st = std::make_unique<VendorRequest>();
    PARTRAIN_MPI_CHECK(MPI_Ibcast(buf, int(count), mpi_type(dt), root, coll_, &st->req));
    count_vendor(ctr, Op::Broadcast, bytes, size_);
    return std::move(Request(std::move(st)).describe("broadcast", -1));
  }
  if (a == Algo::Shm) {
    Request r(make_shm_request(shm(), ShmOp::Broadcast, buf, buf, count, dt, ReduceOp::Sum, root, ctr));
    r.test();
    return std::move(r.describe("broadcast", -1));
  }
  Plan p = make_plan(rank_, size_, dt, ReduceOp::Sum, chunk_bytes_);
  if (count > 0) {
    if (a == Algo::Tree) tree_broadcast(p, buf, count, root);
    else ring_broadcast(p, buf, count, root);
  }
  Request r(std::make_unique<ScheduleRequest>(coll_, next_tag(), std::move(p), ctr));
  r.test();
  return std::move(r.describe("broadcast", -1));
}

Request MpiCommunicator::alltoall(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo) {
  const std::int64_t bytes = count * size_ * std::int64_t(size_of(dt));
  const Algo a = resolve(Op::Alltoall, algo, bytes);
  auto& ctr = counters_[Op::Alltoall];
  ++ctr.calls;
  ctr.bus_bytes += bus_bytes(Op::Alltoall, bytes, size_);
  if (a == Algo::Vendor) {
    check_int_count(count, "MPI_Ialltoall");
    auto st = std::make_unique<VendorRequest>();
    PARTRAIN_MPI_CHECK(MPI_Ialltoall(send == recv ? MPI_IN_PLACE : send, int(count), mpi_type(dt), recv,
                                     int(count), mpi_type(dt), coll_, &st->req));
    count_vendor(ctr, Op::Alltoall, bytes, size_);
    return std::move(Request(std::move(st)).describe("alltoall", -1));
  }
  Plan p = make_plan(rank_, size_, dt, ReduceOp::Sum, chunk_bytes_);
  if (count > 0) {
    const void* src = send;
    if (send == recv) {  // in place: stage the input
      char* staged = p.scratch(*pool_, count * size_);
      std::memcpy(staged, send, std::size_t(bytes));
      src = staged;
    }
    pairwise_alltoall(p, src, recv, count);
  }
  Request r(std::make_unique<ScheduleRequest>(coll_, next_tag(), std::move(p), ctr));
  r.test();
  return std::move(r.describe("alltoall", -1));
}

Request MpiCommunicator::alltoallv(const void* send, const std::int64_t* send_counts, void* recv,
                                   const std::int64_t* recv_counts, DataType dt, Algo algo) {
  const std::int64_t es = std::int64_t(size_of(dt));
  std::int64_t out = 0, total = 0;  // elements sent to other ranks; all elements sent
  for (int j = 0; j < size_; ++j) {
    total += send_counts[j];
    if (j != rank_) out += send_counts[j];
  }
  PARTRAIN_REQUIRE(send != recv || total == 0, "alltoallv is not in place");
  const Algo a = resolve(Op::Alltoall, algo, total * es);
  auto& ctr = counters_[Op::Alltoall];
  ++ctr.calls;
  ctr.bus_bytes += out * es;  // alltoall's bus bytes are what a rank sends to the others
  if (a == Algo::Vendor) {
    auto st = std::make_unique<VendorRequest>();
    st->counts.resize(std::size_t(4 * size_));
    int* sc = st->counts.data();
    int *sd = sc + size_, *rc = sc + 2 * size_, *rd = sc + 3 * size_;
    std::int64_t so = 0, ro = 0;
    for (int j = 0; j < size_; ++j) {
      check_int_count(so + send_counts[j], "MPI_Ialltoallv");
      check_int_count(ro + recv_counts[j], "MPI_Ialltoallv");
      sc[j] = int(send_counts[j]);
      sd[j] = int(so);
      rc[j] = int(recv_counts[j]);
      rd[j] = int(ro);
      so += send_counts[j];
      ro += recv_counts[j];
      if (j != rank_) ctr.bytes_received += recv_counts[j] * es;
    }
    ctr.bytes_sent += out * es;
    PARTRAIN_MPI_CHECK(MPI_Ialltoallv(send, sc, sd, mpi_type(dt), recv, rc, rd, mpi_type(dt), coll_, &st->req));
    return std::move(Request(std::move(st)).describe("alltoallv", -1));
  }
  Plan p = make_plan(rank_, size_, dt, ReduceOp::Sum, chunk_bytes_);
  pairwise_alltoallv(p, send, send_counts, recv, recv_counts);
  Request r(std::make_unique<ScheduleRequest>(coll_, next_tag(), std::move(p), ctr));
  r.test();
  return std::move(r.describe("alltoallv", -1));
}

Request MpiCommunicator::barrier(Algo algo) {
  const Algo a = resolve(Op::Barrier, algo, 0);
  auto& ctr = counters_[Op::Barrier];
  ++ctr.calls;
  if (a == Algo::Vendor) {
    auto st = std::make_unique<VendorRequest>();
    PARTRAIN_MPI_CHECK(MPI_Ibarrier(coll_, &st->req));
    return std::move(Request(std::move(st)).describe("barrier", -1));
  }
  Plan p = make_plan(rank_, size_, DataType::Float, ReduceOp::Sum, chunk_bytes_);
  dissemination_barrier(p);
  Request r(std::make_unique<ScheduleRequest>(coll_, next_tag(), std::move(p), ctr));
  r.test();
  return std::move(r.describe("barrier", -1));
}

Request MpiCommunicator::send(const void* buf, std::int64_t count, DataType dt, int peer, int tag) {
  auto& ctr = counters_[Op::SendRecv];
  ++ctr.calls;
  ctr.bus_bytes += count * std::int64_t(size_of(dt));
  Plan p = make_plan(rank_, size_, dt, ReduceOp::Sum, chunk_bytes_);
  p.send(p.new_round(), peer, buf, count);
  Request r(std::make_unique<ScheduleRequest>(p2p_, tag, std::move(p), ctr));
  r.test();
  return std::move(r.describe("send", peer));
}

Request MpiCommunicator::recv(void* buf, std::int64_t count, DataType dt, int peer, int tag) {
  auto& ctr = counters_[Op::SendRecv];
  ++ctr.calls;
  Plan p = make_plan(rank_, size_, dt, ReduceOp::Sum, chunk_bytes_);
  p.recv(p.new_round(), peer, buf, count);
  Request r(std::make_unique<ScheduleRequest>(p2p_, tag, std::move(p), ctr));
  r.test();
  return std::move(r.describe("recv", peer));
}

}  // namespace partrain::coll
