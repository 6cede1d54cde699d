// The parameter server's transport: every rank keeps a control receive posted from every other rank (a header of
// ten numbers: a message type and its fields), and data travels in tagged point-to-point messages that follow a
// header announcing them — a receiver posts the data receives when it reads the header, so every receive it posts
// is one it knows will be matched. Sends and receives go through the collectives library (counted as send/recv
// traffic) and are advanced by poll(); nothing blocks. Waiting loops call poll() and then pause() (sched_yield when
// the node is oversubscribed, DESIGN.md "Waiting on MPI").
//
// Shutting down (drain): a rank that is finished sends BYE to every other rank once its own sends are complete, and
// keeps receiving — and discarding anything nobody posted a receive for (messages to a rank that went silent) —
// until it has every rank's BYE. No message is left in flight when the job moves on to its final collectives.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "partrain/collectives/mpi_communicator.hpp"

namespace partrain::parallel::ps {

enum Msg : int {
  kPull = 1,    ///< worker → server: shard, clock, pushes sent, wants a ticket
  kPullReply,   ///< server → worker: shard, version, ticket, clock gap, removals known, the fastest worker's steps;
                ///< then the shard's pieces (pull tags)
  kPush,        ///< worker → server: shard, clock, version read, step, first sample, samples, kind, steps it holds;
                ///< then pieces
  kHeartbeat,   ///< any → coordinator: clock, pushes sent
  kRemove,      ///< coordinator → all: worker rank, from clock
  kPromote,     ///< coordinator → all: shard, new primary
  kCoordinator, ///< new coordinator → all: its rank
  kDone,        ///< worker → coordinator (and servers): finished
  kExit,        ///< coordinator → all: the run is over
  kRepl,        ///< primary → backup: shard, version, optimizer steps, worker, tickets, kind; then the update
  kAck,         ///< backup → primary: shard, version
  kBye,         ///< drain
  kJoinAsk,     ///< spare → coordinator: ready to join (at its start, and again to a new coordinator)
  kJoinHold,    ///< coordinator → servers: hold updates and say how far you are (a join's clock is chosen)
  kJoinHeld,    ///< server → coordinator: held at version v
  kJoin,        ///< coordinator → all: spare rank R is a worker from clock K
  kMigrate,     ///< a shard's first owner → its joining server: shard, version, optimizer steps, tickets, loss scale,
                ///< growth tracker, skipped steps; then the shard's values, moments and per-worker counts (repl tag)
};
const char* msg_name(int type);

struct Header {
  std::array<double, 10> f{};
  Header() = default;
  Header(int type, std::initializer_list<double> fields) {
    f[0] = type;
    std::size_t i = 1;
    for (double x : fields) f[i++] = x;
  }
  int type() const { return int(f[0]); }
  double operator[](std::size_t i) const { return f[i]; }
  std::int64_t i(std::size_t k) const { return std::int64_t(f[k]); }
};

class Mailbox {
 public:
  /// Posts a control receive from every other rank of `comm`.
  explicit Mailbox(coll::MpiCommunicator& comm);
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }

  void send(int to, const Header& h);
  /// Sends `n` elements at `data` (which must stay untouched until the send completes: sends_to(to) == 0).
  void send_data(int to, int tag, const void* data, std::int64_t n, coll::DataType dt);
  /// Posts a receive; returns its id (received(id) once complete).
  int recv_data(int from, int tag, void* data, std::int64_t n, coll::DataType dt);
  bool received(int id) const { return recvs_.find(id) == recvs_.end(); }

  /// Advances every send and receive; appends the headers that arrived, in order per sender.
  void poll(std::vector<std::pair<int, Header>>& in);
  /// Sends still in flight to `to` (all destinations for -1).
  int sends_to(int to = -1) const;
  /// The yield of a waiting loop (or nothing when spinning).
  static void pause();

  /// The shutdown protocol above; RuntimeError after `timeout_s` with what is still outstanding.
  void drain(double timeout_s);

 private:
  struct Out {
    coll::Request req;
    int to;
    std::unique_ptr<Header> header;  ///< a control send's buffer
  };
  coll::MpiCommunicator& comm_;
  std::vector<Header> ctrl_buf_;
  std::vector<coll::Request> ctrl_;
  std::vector<bool> ctrl_open_;
  std::deque<Out> out_;
  std::map<int, coll::Request> recvs_;
  int next_id_ = 0;
  bool draining_ = false;
  std::vector<bool> bye_;
};

}  // namespace partrain::parallel::ps
