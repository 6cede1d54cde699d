#include "partrain/parallel/ep/experts.hpp"

#include <string>

#include "partrain/core/error.hpp"
#include "partrain/models/moe.hpp"

namespace partrain::parallel {

std::vector<io::NamedTensor> gather_experts(std::vector<io::NamedTensor> tensors, coll::MpiCommunicator& ep,
                                            std::int64_t experts, std::int64_t first) {
  // every rank of the group holds the same tensors of its E/ep experts, in the same order
  std::vector<io::NamedTensor> out, mine;
  for (auto& t : tensors) (models::is_expert_parameter(t.name) ? mine : out).push_back(std::move(t));
  std::vector<double> flat;
  for (const auto& t : mine) flat.insert(flat.end(), t.values.begin(), t.values.end());
  const int n = ep.size();
  std::vector<double> all(flat.size() * std::size_t(n));
  PARTRAIN_MPI_CHECK(MPI_Allgather(flat.data(), int(flat.size()), MPI_DOUBLE, all.data(), int(flat.size()), MPI_DOUBLE,
                                   ep.comm()));
  const std::int64_t per = experts / n;
  for (int r = 0; r < n; ++r) {
    std::size_t at = std::size_t(r) * flat.size();
    for (const auto& t : mine) {
      // "blocks.<l>.moe.experts.<e>.<rest>": this rank's expert e is rank r's expert e − first + r·E/ep
      const auto p = t.name.find(".moe.experts.") + 13, q = t.name.find('.', p);
      const std::int64_t e = std::stoll(t.name.substr(p, q - p)) - first + std::int64_t(r) * per;
      io::NamedTensor g{t.name.substr(0, p) + std::to_string(e) + t.name.substr(q), t.shape, {}};
      g.values.assign(all.begin() + std::ptrdiff_t(at), all.begin() + std::ptrdiff_t(at + t.values.size()));
      at += t.values.size();
      out.push_back(std::move(g));
    }
  }
  return out;
}

}  // namespace partrain::parallel
