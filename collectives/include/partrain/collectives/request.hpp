// A nonblocking operation in flight. Each is a state machine advanced by test(): it posts the next messages,
// runs the local reductions whose inputs have arrived, and returns true once the result is in place. Nothing
// progresses between calls (no hidden thread): a mini-app overlaps communication by calling test() between
// layers. wait() loops on test() under the wait policy (spin, or yield when the node is oversubscribed).
#pragma once

#include <memory>

#include "partrain/collectives/wait.hpp"

namespace partrain::coll {

class RequestState {
 public:
  virtual ~RequestState() = default;
  /// Advances the operation; true when complete. Must be cheap when nothing can move.
  virtual bool test() = 0;
};

class Request {
 public:
  Request() = default;  ///< an empty request is complete
  explicit Request(std::unique_ptr<RequestState> s) : state_(std::move(s)) {}
  Request(Request&&) noexcept = default;
  Request& operator=(Request&&) noexcept = default;

  /// Advances; true when complete (and from then on).
  bool test() {
    if (!state_) return true;
    if (!state_->test()) return false;
    state_.reset();
    return true;
  }
  /// Completes the operation under the policy (the watchdog watching).
  void wait(WaitPolicy policy = wait_policy());
  bool done() const { return !state_; }
  /// What the request is, for the watchdog's line: "allreduce", "recv" (and the peer, or -1).
  Request& describe(const char* what, int peer = -1) {
    what_ = what;
    peer_ = peer;
    return *this;
  }
  const char* what() const { return what_; }
  int peer() const { return peer_; }

 private:
  std::unique_ptr<RequestState> state_;
  const char* what_ = "a collective";
  int peer_ = -1;
};

/// Waits for every request.
void wait_all(std::vector<Request>& reqs, WaitPolicy policy = wait_policy());

}  // namespace partrain::coll
