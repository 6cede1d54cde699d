#include "algorithms.hpp"

namespace partrain::coll {

void tree_allreduce(Plan& p, void* work, std::int64_t count, char* tmp) {
  const int n = p.n, r = p.rank;
  for (int mask = 1; mask < n; mask *= 2) {  // binomial reduce to rank 0
    if (r & mask) {
      Round& rd = p.new_round();
      p.send(rd, r - mask, work, count);
      break;
    }
    if (r + mask < n) {
      Round& rd = p.new_round();
      p.recv(rd, r + mask, tmp, count);
      p.reduce(rd, work, work, tmp, count);
    }
  }
  tree_broadcast(p, work, count, 0);
}

void tree_broadcast(Plan& p, void* buf, std::int64_t count, int root) {
  const int n = p.n, rr = (p.rank - root + n) % n;
  auto real = [&](int rel) { return (rel + root) % n; };
  int mask = 1;
  while (mask < n) {  // receive from the parent: clear the lowest set bit of the relative rank
    if (rr & mask) {
      Round& rd = p.new_round();
      p.recv(rd, real(rr - mask), buf, count);
      break;
    }
    mask *= 2;
  }
  for (mask /= 2; mask > 0; mask /= 2) {  // then send to the children, largest subtree first
    if (rr + mask < n) {
      Round& rd = p.new_round();
      p.send(rd, real(rr + mask), buf, count);
    }
  }
}

}  // namespace partrain::coll
