// What every strategy that spreads experts needs besides the token exchange (docs/ep.md): the groups, and the
// experts' tensors gathered under the reference's names for dumps.
#pragma once

#include <memory>
#include <vector>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/io/state_dump.hpp"

namespace partrain::parallel {

/// The expert group (ep ranks sharing each MoE block's experts) and the ranks holding the same experts; the token
/// all-to-alls' algorithm.
struct EpGroups {
  coll::MpiCommunicator* ep = nullptr;
  coll::MpiCommunicator* edp = nullptr;
  coll::Algo algo = coll::Algo::Auto;
};

/// The groups, made from a data-parallel group: expert groups of `degree` consecutive ranks, and the ranks with the
/// same place in their group (holding the same experts). Collective over `dp`.
class ExpertGroups {
 public:
  ExpertGroups(const coll::MpiCommunicator& dp, int degree, coll::Algo algo)
      : ep_(dp.split(dp.rank() / degree, dp.rank())), edp_(dp.split(dp.rank() % degree, dp.rank())),
        groups_{ep_.get(), edp_.get(), algo} {}
  const EpGroups& groups() const { return groups_; }

 private:
  std::unique_ptr<coll::MpiCommunicator> ep_, edp_;
  EpGroups groups_;
};

/// `tensors` (this rank's, under the reference's names) with the experts' replaced by every expert's, gathered over
/// the expert group: rank r of it holds experts [r·E/ep, (r + 1)·E/ep) of each MoE block, and `first` is this rank's
/// first. Collective over `ep`.
std::vector<io::NamedTensor> gather_experts(std::vector<io::NamedTensor> tensors, coll::MpiCommunicator& ep,
                                            std::int64_t experts, std::int64_t first);

}  // namespace partrain::parallel
