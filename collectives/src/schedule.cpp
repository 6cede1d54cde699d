#include "schedule.hpp"

#include <cstring>

#include "partrain/core/error.hpp"
#include "reduce.hpp"

namespace partrain::coll {

namespace {
constexpr std::int64_t kMaxMessageBytes = std::int64_t(1) << 30;  // stays clear of MPI's int count
}

namespace {
/// Appends messages of `elems` elements from `p`, split where one would exceed MPI's int count.
void add_transfers(std::vector<Transfer>& to, int peer, char* ptr, std::int64_t bytes) {
  do {
    const std::int64_t b = bytes < kMaxMessageBytes ? bytes : kMaxMessageBytes;
    to.push_back({peer, ptr, b});
    ptr += b;
    bytes -= b;
  } while (bytes > 0);
}
}  // namespace

void Plan::send(Round& r, int peer, const void* p, std::int64_t elems) {
  add_transfers(r.sends, peer, at(p, 0), elems * std::int64_t(esize));
}

void Plan::recv(Round& r, int peer, void* p, std::int64_t elems) {
  add_transfers(r.recvs, peer, at(p, 0), elems * std::int64_t(esize));
}

ScheduleRequest::ScheduleRequest(MPI_Comm comm, int tag, Plan&& plan, OpCounters& counters)
    : comm_(comm), tag_(tag), plan_(std::move(plan)), counters_(counters) {}

bool ScheduleRequest::test() {
  while (cur_ < plan_.rounds.size()) {
    Round& r = plan_.rounds[cur_];
    if (!posted_) {
      reqs_.resize(r.recvs.size() + r.sends.size());
      size_t i = 0;
      for (const auto& t : r.recvs) {
        PARTRAIN_MPI_CHECK(MPI_Irecv(t.ptr, int(t.bytes), MPI_BYTE, t.peer, tag_, comm_, &reqs_[i++]));
        counters_.bytes_received += t.bytes;
      }
      for (const auto& t : r.sends) {
        PARTRAIN_MPI_CHECK(MPI_Isend(t.ptr, int(t.bytes), MPI_BYTE, t.peer, tag_, comm_, &reqs_[i++]));
        counters_.bytes_sent += t.bytes;
      }
      posted_ = true;
    }
    if (!reqs_.empty()) {
      int done = 0;
      PARTRAIN_MPI_CHECK(MPI_Testall(int(reqs_.size()), reqs_.data(), &done, MPI_STATUSES_IGNORE));
      if (!done) return false;
    }
    for (const auto& op : r.ops) {
      if (op.reduce) reduce(plan_.dt, plan_.op, op.dst, op.a, op.b, op.count);
      else std::memmove(op.dst, op.a, std::size_t(op.count) * plan_.esize);
    }
    posted_ = false;
    ++cur_;
  }
  return true;
}

}  // namespace partrain::coll
