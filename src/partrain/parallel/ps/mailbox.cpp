#include "partrain/parallel/ps/mailbox.hpp"

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "partrain/core/error.hpp"
#include "partrain/core/timer.hpp"

namespace partrain::parallel::ps {
namespace {
// PARTRAIN_PS_TRACE=1: every control message sent and received, on stderr (for debugging the protocol).
const bool g_trace = [] {
  const char* e = std::getenv("PARTRAIN_PS_TRACE");
  return e && *e == '1';
}();
void trace(const char* dir, int me, int peer, const Header& h) {
  std::fprintf(stderr, "[ps %d] %s %d %s %g %g %g %g %g %g %g %g %g\n", me, dir, peer, msg_name(h.type()), h[1], h[2],
               h[3], h[4], h[5], h[6], h[7], h[8], h[9]);
}
}  // namespace

const char* msg_name(int t) {
  static const char* names[] = {"?",     "pull", "pull-reply", "push",  "heartbeat", "remove", "promote",
                                "coordinator", "done", "exit", "repl", "ack", "bye", "join-ask", "join-hold",
                                "join-held", "join", "migrate"};
  return t >= 0 && t <= kMigrate ? names[t] : "?";
}

Mailbox::Mailbox(coll::MpiCommunicator& comm)
    : comm_(comm),
      ctrl_buf_(std::size_t(comm.size())),
      ctrl_(std::size_t(comm.size())),
      ctrl_open_(std::size_t(comm.size()), false),
      bye_(std::size_t(comm.size()), false) {
  for (int r = 0; r < comm.size(); ++r) {
    if (r == comm.rank()) continue;
    ctrl_[std::size_t(r)] = comm_.recv(ctrl_buf_[std::size_t(r)].f.data(), 10, coll::DataType::Double, r, 0);
    ctrl_open_[std::size_t(r)] = true;
  }
}

void Mailbox::send(int to, const Header& h) {
  PARTRAIN_REQUIRE(to != rank() && to >= 0 && to < size(), std::string("a control message to rank ") + std::to_string(to));
  if (g_trace) trace("->", rank(), to, h);
  auto buf = std::make_unique<Header>(h);
  coll::Request r = comm_.send(buf->f.data(), 10, coll::DataType::Double, to, 0);
  out_.push_back({std::move(r), to, std::move(buf)});
}

void Mailbox::send_data(int to, int tag, const void* data, std::int64_t n, coll::DataType dt) {
  out_.push_back({comm_.send(data, n, dt, to, tag), to, nullptr});
}

int Mailbox::recv_data(int from, int tag, void* data, std::int64_t n, coll::DataType dt) {
  const int id = next_id_++;
  coll::Request r = comm_.recv(data, n, dt, from, tag);
  if (!r.done()) recvs_.emplace(id, std::move(r));
  return id;
}

void Mailbox::poll(std::vector<std::pair<int, Header>>& in) {
  for (auto it = out_.begin(); it != out_.end();) it = it->req.test() ? out_.erase(it) : std::next(it);
  for (auto it = recvs_.begin(); it != recvs_.end();) it = it->second.test() ? recvs_.erase(it) : std::next(it);
  for (int r = 0; r < size(); ++r) {
    const auto k = std::size_t(r);
    if (!ctrl_open_[k] || !ctrl_[k].test()) continue;
    const Header h = ctrl_buf_[k];
    ctrl_open_[k] = false;
    if (g_trace) trace("<-", rank(), r, h);
    if (h.type() == kBye) {
      bye_[k] = true;  // the peer sends nothing after its BYE
    } else {
      ctrl_[k] = comm_.recv(ctrl_buf_[k].f.data(), 10, coll::DataType::Double, r, 0);
      ctrl_open_[k] = true;
      if (!draining_) in.emplace_back(r, h);
    }
  }
}

int Mailbox::sends_to(int to) const {
  int n = 0;
  for (const auto& o : out_) n += (to < 0 || o.to == to) ? 1 : 0;
  return n;
}

void Mailbox::pause() {
  coll::idle();
}

void Mailbox::drain(double timeout_s) {
  draining_ = true;
  const double t0 = wall_time_s();
  bool bye_sent = false;
  std::vector<std::pair<int, Header>> ignored;
  std::vector<char> sink;
  for (;;) {
    poll(ignored);
    if (!bye_sent && out_.empty()) {
      for (int r = 0; r < size(); ++r)
        if (r != rank()) send(r, Header(kBye, {}));
      bye_sent = true;
    }
    // Data nobody will post a receive for (sent to a rank that went silent): received and dropped.
    int flag = 0;
    MPI_Status st;
    MPI_Message msg;
    PARTRAIN_MPI_CHECK(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_.comm(), &flag, &msg, &st));
    if (flag) {
      PARTRAIN_REQUIRE(st.MPI_TAG != 0, "an unexpected control message while draining");
      int bytes = 0;
      MPI_Get_count(&st, MPI_BYTE, &bytes);
      sink.resize(std::size_t(std::max(bytes, 1)));
      PARTRAIN_MPI_CHECK(MPI_Mrecv(sink.data(), bytes, MPI_BYTE, &msg, MPI_STATUS_IGNORE));
      continue;
    }
    bool all = bye_sent && out_.empty() && recvs_.empty();
    for (int r = 0; r < size() && all; ++r) all = r == rank() || bye_[std::size_t(r)];
    if (all) return;
    if (wall_time_s() - t0 > timeout_s) {
      std::string missing;
      for (int r = 0; r < size(); ++r)
        if (r != rank() && !bye_[std::size_t(r)]) missing += " " + std::to_string(r);
      throw RuntimeError("parameter server shutdown: no goodbye from rank(s)" + missing + " after " +
                         std::to_string(int(timeout_s)) + " s (" + std::to_string(out_.size()) + " sends, " +
                         std::to_string(recvs_.size()) + " receives outstanding)");
    }
    pause();
  }
}

}  // namespace partrain::parallel::ps
