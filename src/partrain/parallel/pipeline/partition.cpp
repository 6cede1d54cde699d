#include "partrain/parallel/pipeline/partition.hpp"

#include <algorithm>
#include <limits>

#include "partrain/core/error.hpp"

namespace partrain::parallel::pipeline {

std::vector<std::pair<int, int>> partition_layers(const std::string& mode, const std::vector<std::int64_t>& counts,
                                                  const std::vector<double>& costs, int chunks, double first_extra,
                                                  double last_extra) {
  const int L = int(costs.size());
  PARTRAIN_REQUIRE(chunks >= 1 && L >= chunks, "every chunk needs at least one layer");
  std::vector<std::pair<int, int>> out;
  if (mode == "explicit") {
    PARTRAIN_REQUIRE(int(counts.size()) == chunks, "one layer count per chunk");
    int a = 0;
    for (auto n : counts) {
      out.emplace_back(a, a + int(n));
      a += int(n);
    }
    PARTRAIN_REQUIRE(a == L, "layer counts must add up to the layers");
    return out;
  }
  if (mode == "uniform") {
    int a = 0;
    for (int c = 0; c < chunks; ++c) {
      const int n = L / chunks + (c < L % chunks ? 1 : 0);
      out.emplace_back(a, a + n);
      a += n;
    }
    return out;
  }
  PARTRAIN_REQUIRE(mode == "flops", "unknown partition mode " + mode);
  // best[c][i]: the smallest possible largest cost when the first i layers form chunks 0 … c−1.
  std::vector<double> prefix(std::size_t(L) + 1, 0.0);
  for (int i = 0; i < L; ++i) prefix[std::size_t(i) + 1] = prefix[std::size_t(i)] + costs[std::size_t(i)];
  auto cost = [&](int c, int a, int b) {
    return prefix[std::size_t(b)] - prefix[std::size_t(a)] + (c == 0 ? first_extra : 0.0) +
           (c == chunks - 1 ? last_extra : 0.0);
  };
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(std::size_t(chunks) + 1, std::vector<double>(std::size_t(L) + 1, inf));
  std::vector<std::vector<int>> cut(std::size_t(chunks) + 1, std::vector<int>(std::size_t(L) + 1, 0));
  best[0][0] = 0;
  for (int c = 1; c <= chunks; ++c)
    for (int i = c; i <= L - (chunks - c); ++i)
      for (int j = c - 1; j < i; ++j) {
        const double v = std::max(best[std::size_t(c) - 1][std::size_t(j)], cost(c - 1, j, i));
        if (v < best[std::size_t(c)][std::size_t(i)]) {
          best[std::size_t(c)][std::size_t(i)] = v;
          cut[std::size_t(c)][std::size_t(i)] = j;
        }
      }
  out.resize(std::size_t(chunks));
  for (int c = chunks, i = L; c > 0; --c) {
    const int j = cut[std::size_t(c)][std::size_t(i)];
    out[std::size_t(c) - 1] = {j, i};
    i = j;
  }
  return out;
}

}  // namespace partrain::parallel::pipeline
