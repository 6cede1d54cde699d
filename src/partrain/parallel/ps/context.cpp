#include "partrain/parallel/ps/context.hpp"

#include "partrain/core/timer.hpp"

namespace partrain::parallel::ps {

double Context::now() const { return wall_time_s() - t0; }

void Context::stall_until_exit() {
  // Silent: nothing is sent or answered; the membership view is still kept, and the exit is awaited.
  std::vector<std::pair<int, Header>> in;
  while (!exit_seen) {
    in.clear();
    mb.poll(in);
    for (const auto& [from, h] : in) {
      members.apply(from, h);
      if (h.type() == kExit) exit_seen = true;
    }
    Mailbox::pause();
  }
}

}  // namespace partrain::parallel::ps
