// Expert parallelism's token routing (docs/ep.md): the ep ranks of an expert group hold E/ep experts each; an MoE
// layer's dispatched rows (expert-major, models/moe.hpp) go to their experts' ranks by an all-to-all of variable
// counts and come back by the reverse one. The counts go first (one alltoall of E/ep integers per peer), then the
// rows (alltoallv); on arrival they are regrouped from peer-major (what each peer sent, its experts in order) to
// expert-major (each local expert's rows, peer by peer: the global batch's sequence order, as in the reference).
// Nonblocking: start_* posts the rows, finish_* waits (through the wait helper) and regroups.
#pragma once

#include "partrain/collectives/communicator.hpp"
#include "partrain/models/moe.hpp"

namespace partrain::parallel {

template <class T>
class AlltoallExchange : public models::ExpertExchange<T> {
 public:
  /// `group`: the expert group (ep ranks); `experts`: E (divisible by the group's size); `channels`: C.
  AlltoallExchange(coll::Communicator& group, std::int64_t experts, std::int64_t channels,
                   coll::Algo algo = coll::Algo::Auto);
  void plan(const std::vector<std::int64_t>& rows_per_expert, models::ExchangePlan& plan) override;
  void start_dispatch(const models::ExchangePlan& plan, const View2<T>& send) override;
  void finish_dispatch(const models::ExchangePlan& plan, const View2<T>& recv) override;
  void start_combine(const models::ExchangePlan& plan, const View2<T>& local, const View2<T>& back) override;
  void finish_combine() override;
  void progress() override;

  /// Seconds inside the exchanges' calls (fenced: posting, waiting, regrouping) since the last take_time(): what the
  /// layers wait for, less what their overlap hid.
  double take_time() {
    const double t = time_s_;
    time_s_ = 0;
    return t;
  }
  /// Rows this rank sent to other ranks (dispatches and combines) since the start.
  std::int64_t rows_sent() const { return rows_sent_; }

 private:
  View2<T>& staging(std::int64_t rows);
  coll::Communicator& group_;
  std::int64_t E_, El_, C_;
  coll::Algo algo_;
  View2<T> staging_;
  coll::Request inflight_;
  bool busy_ = false;
  std::vector<double> counts_out_, counts_in_;
  std::vector<std::int64_t> elems_out_, elems_in_;
  double time_s_ = 0;
  std::int64_t rows_sent_ = 0;
};

extern template class AlltoallExchange<float>;
extern template class AlltoallExchange<double>;
extern template class AlltoallExchange<bf16>;
extern template class AlltoallExchange<fp16>;

}  // namespace partrain::parallel
