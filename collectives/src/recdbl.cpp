#include "algorithms.hpp"

namespace partrain::coll {
namespace {

/// The fold of n ranks onto p′ = 2^⌊log₂ n⌋ virtual ranks: ranks 2i, 2i+1 (i < rem) become virtual rank i (the odd
/// one acts), rank r ≥ 2·rem becomes r − rem. A virtual range [a, b) owns the contiguous elements of its real ranks.
struct Fold {
  int n, p2, rem, rank;
  std::int64_t count;
  Fold(int n_, int rank_, std::int64_t count_) : n(n_), rank(rank_), count(count_) {
    p2 = 1;
    while (p2 * 2 <= n) p2 *= 2;
    rem = n - p2;
  }
  bool folded_even() const { return rank < 2 * rem && rank % 2 == 0; }
  bool folded_odd() const { return rank < 2 * rem && rank % 2 == 1; }
  int vrank() const { return rank < 2 * rem ? (rank % 2 ? rank / 2 : -1) : rank - rem; }
  int real(int v) const { return v < rem ? 2 * v + 1 : v + rem; }
  int first_real(int v) const { return v < rem ? 2 * v : v + rem; }
  std::int64_t begin(int v) const { return block_offset(count, n, first_real(v)); }
  /// elements of virtual ranks [a, b)
  std::int64_t lo(int a) const { return begin(a); }
  std::int64_t hi(int b) const { return b >= p2 ? count : begin(b); }
};

/// Step 0 of a fold: the even rank of a pair sends `elems` at `buf` to its odd partner, which receives into
/// `into` and (if `reduce_into`) reduces it into buf.
void fold_in(Plan& p, const Fold& f, void* buf, std::int64_t elems, char* into, bool reduce_into) {
  if (f.folded_even()) {
    Round& rd = p.new_round();
    p.send(rd, f.rank + 1, buf, elems);
  } else if (f.folded_odd()) {
    Round& rd = p.new_round();
    p.recv(rd, f.rank - 1, into, elems);
    if (reduce_into) p.reduce(rd, buf, buf, into, elems);
  }
}

/// Last step of a fold: the odd rank returns the whole result to its even partner.
void fold_out(Plan& p, const Fold& f, void* buf, std::int64_t count) {
  if (f.folded_odd()) {
    Round& rd = p.new_round();
    p.send(rd, f.rank - 1, buf, count);
  } else if (f.folded_even()) {
    Round& rd = p.new_round();
    p.recv(rd, f.rank + 1, buf, count);
  }
}

/// Recursive halving among virtual ranks on `work`: afterwards virtual rank v holds the reduction of its own
/// virtual block [v, v+1).
void halving(Plan& p, const Fold& f, void* work, char* tmp) {
  const int v = f.vrank();
  int a = 0, b = f.p2;
  for (int mask = f.p2 / 2; mask >= 1; mask /= 2) {
    const int partner = f.real(v ^ mask), mid = a + (b - a) / 2;
    int ka = a, kb = mid, ga = mid, gb = b;  // keep [ka, kb), give [ga, gb)
    if (v & mask) std::swap(ka, ga), std::swap(kb, gb);
    Round& rd = p.new_round();
    const std::int64_t klo = f.lo(ka), kn = f.hi(kb) - klo, glo = f.lo(ga), gn = f.hi(gb) - glo;
    p.recv(rd, partner, tmp, kn);
    p.send(rd, partner, p.at(work, glo), gn);
    p.reduce(rd, p.at(work, klo), p.at(work, klo), tmp, kn);
    a = ka;
    b = kb;
  }
}

/// Recursive doubling of ranges among virtual ranks on `buf`: virtual rank v starts with [v, v+1) and ends
/// with everything.
void doubling(Plan& p, const Fold& f, void* buf) {
  const int v = f.vrank();
  int a = v, b = v + 1;
  for (int mask = 1; mask < f.p2; mask *= 2) {
    const int partner = f.real(v ^ mask), width = b - a;
    const int pa = (v & mask) ? a - width : b, pb = pa + width;
    Round& rd = p.new_round();
    p.recv(rd, partner, p.at(buf, f.lo(pa)), f.hi(pb) - f.lo(pa));
    p.send(rd, partner, p.at(buf, f.lo(a)), f.hi(b) - f.lo(a));
    a = std::min(a, pa);
    b = std::max(b, pb);
  }
}

}  // namespace

void recdbl_allreduce(Plan& p, void* work, std::int64_t count, char* tmp) {
  const Fold f(p.n, p.rank, count);
  fold_in(p, f, work, count, tmp, true);
  if (f.vrank() >= 0) {
    for (int mask = 1; mask < f.p2; mask *= 2) {
      const int partner = f.real(f.vrank() ^ mask);
      Round& rd = p.new_round();
      p.recv(rd, partner, tmp, count);
      p.send(rd, partner, work, count);
      p.reduce(rd, work, work, tmp, count);  // mine ⊕ theirs: commutative, so both partners get the same bits
    }
  }
  fold_out(p, f, work, count);
}

void rabenseifner_allreduce(Plan& p, void* work, std::int64_t count, char* tmp) {
  const Fold f(p.n, p.rank, count);
  fold_in(p, f, work, count, tmp, true);
  if (f.vrank() >= 0) {
    halving(p, f, work, tmp);
    doubling(p, f, work);
  }
  fold_out(p, f, work, count);
}

void recdbl_reduce_scatter(Plan& p, void* work, void* final_dst, std::int64_t count, char* tmp) {
  const Fold f(p.n, p.rank, count);
  fold_in(p, f, work, count, tmp, true);
  const std::int64_t mine = block_offset(count, p.n, p.rank), nmine = block_count(count, p.n, p.rank);
  if (f.vrank() >= 0) {
    halving(p, f, work, tmp);
    Round& rd = p.new_round();
    if (f.folded_odd()) {  // the even partner's block goes back to it
      const int e = p.rank - 1;
      p.send(rd, e, p.at(work, block_offset(count, p.n, e)), block_count(count, p.n, e));
    }
    p.copy(rd, final_dst, p.at(work, mine), nmine);
  } else {
    Round& rd = p.new_round();
    p.recv(rd, p.rank + 1, final_dst, nmine);
  }
}

void recdbl_allgather(Plan& p, void* recv, std::int64_t count) {
  const Fold f(p.n, p.rank, count);
  if (f.folded_even()) {
    Round& rd = p.new_round();
    p.send(rd, p.rank + 1, p.at(recv, block_offset(count, p.n, p.rank)), block_count(count, p.n, p.rank));
  } else if (f.folded_odd()) {
    const int e = p.rank - 1;
    Round& rd = p.new_round();
    p.recv(rd, e, p.at(recv, block_offset(count, p.n, e)), block_count(count, p.n, e));
  }
  if (f.vrank() >= 0) doubling(p, f, recv);
  fold_out(p, f, recv, count);
}

void dissemination_barrier(Plan& p) {
  for (int dist = 1; dist < p.n; dist *= 2) {
    Round& rd = p.new_round();
    p.recv(rd, (p.rank - dist + p.n) % p.n, nullptr, 0);
    p.send(rd, (p.rank + dist) % p.n, nullptr, 0);
  }
}

}  // namespace partrain::coll
