#include "partrain/collectives/request.hpp"

#include <sched.h>

namespace partrain::coll {

void Request::wait(WaitPolicy policy) {
  while (!test())
    if (policy == WaitPolicy::Yield) sched_yield();
}

void wait_all(std::vector<Request>& reqs, WaitPolicy policy) {
  for (;;) {
    bool all = true;
    for (auto& r : reqs) all = r.test() && all;
    if (all) return;
    if (policy == WaitPolicy::Yield) sched_yield();
  }
}

}  // namespace partrain::coll
