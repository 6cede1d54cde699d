#include "algorithms.hpp"

#include <vector>

namespace partrain::coll {
namespace {
int mod(int a, int n) { return ((a % n) + n) % n; }
std::int64_t chunks_of(std::int64_t elems, std::int64_t chunk) { return (elems + chunk - 1) / chunk; }
}  // namespace

void ring_reduce_scatter(Plan& p, const void* send, void* part, void* final_dst, std::int64_t count, char* tmp) {
  const int n = p.n, r = p.rank;
  if (n == 1) {
    Round& rd = p.new_round();
    p.copy(rd, final_dst, send, count);
    return;
  }
  const int next = mod(r + 1, n), prev = mod(r - 1, n);
  const std::int64_t ce = p.chunk_elems;
  for (int s = 0; s < n - 1; ++s) {
    const int sb = mod(r - s - 1, n), rb = mod(r - s - 2, n);
    const std::int64_t ns = block_count(count, n, sb), nr = block_count(count, n, rb);
    const std::int64_t os = block_offset(count, n, sb), orb = block_offset(count, n, rb);
    const char* src = s == 0 ? p.at(send, os) : p.at(part, os);
    char* dst = s == n - 2 ? p.at(final_dst, 0) : p.at(part, orb);
    const std::int64_t chunks = std::max(chunks_of(ns, ce), chunks_of(nr, ce));
    for (std::int64_t k = 0; k < chunks; ++k) {
      Round& rd = p.new_round();
      const std::int64_t lo = k * ce;
      if (lo < nr) {
        const std::int64_t m = std::min(ce, nr - lo);
        p.recv(rd, prev, tmp, m);
        p.reduce(rd, dst + lo * std::int64_t(p.esize), p.at(send, orb + lo), tmp, m);
      }
      if (lo < ns) p.send(rd, next, src + lo * std::int64_t(p.esize), std::min(ce, ns - lo));
    }
  }
}

void ring_allgather(Plan& p, void* recv, std::int64_t count) {
  const int n = p.n, r = p.rank;
  const int next = mod(r + 1, n), prev = mod(r - 1, n);
  const std::int64_t ce = p.chunk_elems;
  for (int s = 0; s < n - 1; ++s) {
    const int sb = mod(r - s, n), rb = mod(r - s - 1, n);
    const std::int64_t ns = block_count(count, n, sb), nr = block_count(count, n, rb);
    const std::int64_t os = block_offset(count, n, sb), orb = block_offset(count, n, rb);
    const std::int64_t chunks = std::max(chunks_of(ns, ce), chunks_of(nr, ce));
    for (std::int64_t k = 0; k < chunks; ++k) {
      Round& rd = p.new_round();
      const std::int64_t lo = k * ce;
      if (lo < nr) p.recv(rd, prev, p.at(recv, orb + lo), std::min(ce, nr - lo));
      if (lo < ns) p.send(rd, next, p.at(recv, os + lo), std::min(ce, ns - lo));
    }
  }
}

void ring_broadcast(Plan& p, void* buf, std::int64_t count, int root) {
  const int n = p.n, rr = mod(p.rank - root, n);
  if (n == 1 || count == 0) return;
  const int next = mod(p.rank + 1, n), prev = mod(p.rank - 1, n);
  const std::int64_t ce = p.chunk_elems, chunks = chunks_of(count, ce);
  auto len = [&](std::int64_t k) { return std::min(ce, count - k * ce); };
  for (std::int64_t k = 0; k <= chunks; ++k) {
    const bool recv_k = rr != 0 && k < chunks;
    const bool send_prev = rr != n - 1 && (rr == 0 ? k < chunks : k >= 1);
    if (!recv_k && !send_prev) continue;
    Round& rd = p.new_round();
    if (recv_k) p.recv(rd, prev, p.at(buf, k * ce), len(k));
    if (send_prev) {
      const std::int64_t j = rr == 0 ? k : k - 1;  // the root sends chunk k; the others forward chunk k−1
      p.send(rd, next, p.at(buf, j * ce), len(j));
    }
  }
}

void pairwise_alltoall(Plan& p, const void* send, void* recv, std::int64_t count) {
  const int n = p.n, r = p.rank;
  Round& first = p.new_round();
  p.copy(first, p.at(recv, std::int64_t(r) * count), p.at(send, std::int64_t(r) * count), count);
  for (int s = 1; s < n; ++s) {
    const int to = mod(r + s, n), from = mod(r - s, n);
    Round& rd = p.new_round();
    p.recv(rd, from, p.at(recv, std::int64_t(from) * count), count);
    p.send(rd, to, p.at(send, std::int64_t(to) * count), count);
  }
}

void pairwise_alltoallv(Plan& p, const void* send, const std::int64_t* send_counts, void* recv,
                        const std::int64_t* recv_counts) {
  const int n = p.n, r = p.rank;
  std::vector<std::int64_t> sd(std::size_t(n) + 1, 0), rd(std::size_t(n) + 1, 0);
  for (int j = 0; j < n; ++j) {
    sd[std::size_t(j) + 1] = sd[std::size_t(j)] + send_counts[j];
    rd[std::size_t(j) + 1] = rd[std::size_t(j)] + recv_counts[j];
  }
  Round& first = p.new_round();
  p.copy(first, p.at(recv, rd[std::size_t(r)]), p.at(send, sd[std::size_t(r)]), send_counts[r]);
  for (int s = 1; s < n; ++s) {
    const int to = mod(r + s, n), from = mod(r - s, n);
    Round& round = p.new_round();
    if (recv_counts[from] > 0) p.recv(round, from, p.at(recv, rd[std::size_t(from)]), recv_counts[from]);
    if (send_counts[to] > 0) p.send(round, to, p.at(send, sd[std::size_t(to)]), send_counts[to]);
  }
}

}  // namespace partrain::coll
