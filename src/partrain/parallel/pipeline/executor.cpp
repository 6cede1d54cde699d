#include "partrain/parallel/pipeline/executor.hpp"

#include <sched.h>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/timer.hpp"

namespace partrain::parallel::pipeline {

template <class T>
Executor<T>::Executor(const ScheduleSpec& s, int stage, std::vector<ModelChunk<T>*> chunks,
                      std::vector<GradientReducer<T>*> reducers, StageLinks<T>& links, bool recompute)
    : s_(s),
      stage_(stage),
      chunks_(std::move(chunks)),
      reducers_(std::move(reducers)),
      links_(links),
      recompute_(recompute),
      split_(splits_backward(s.kind)),
      actions_(schedule(s, stage)),
      last_mb_(chunks_.size(), -1),
      act_all_(chunks_.size()),
      act_free_(chunks_.size()) {
  for (const auto& a : actions_)  // the last B (or W) of each chunk finishes its gradients
    if (a.type == (split_ ? ActionType::Weight : ActionType::Backward)) last_mb_[std::size_t(a.chunk)] = a.mb;
  for (auto* c : chunks_) {
    input_pool_.push_back(Pool{"act/pipeline.input", c->in_rows(), c->in_width(), {}});
    grad_pool_.push_back(Pool{"act/pipeline.output_grad", c->out_rows(), c->out_width(), {}});
    send_fwd_pool_.push_back(Pool{"comm/pipeline.send_forward", c->out_rows(), c->out_width(), {}});
    send_bwd_pool_.push_back(Pool{"comm/pipeline.send_backward", c->in_rows(), c->in_width(), {}});
    losses_.emplace_back("act/pipeline.losses", c->holds_last() ? c->out_rows() : 0);
  }
}

template <class T>
typename Executor<T>::Act* Executor<T>::acquire(int chunk) {
  auto& free = act_free_[std::size_t(chunk)];
  if (free.empty()) {
    act_all_[std::size_t(chunk)].push_back(std::make_unique<Act>(chunks_[std::size_t(chunk)]->make_activations()));
    return act_all_[std::size_t(chunk)].back().get();
  }
  Act* a = free.back();
  free.pop_back();
  return a;
}

template <class T>
void Executor<T>::release(int chunk, Act* a) {
  act_free_[std::size_t(chunk)].push_back(a);
}

template <class T>
void Executor<T>::post_receive(std::size_t i) {
  const Action& a = actions_[i];
  auto& fl = flight_[{a.mb, a.chunk}];
  if (a.type == ActionType::RecvForward) {
    fl.input = input_pool_[std::size_t(a.chunk)].get();
    posted_.emplace(i, links_.recv_forward(fl.input, a.mb, a.chunk));
  } else {
    fl.grad_in = grad_pool_[std::size_t(a.chunk)].get();
    posted_.emplace(i, links_.recv_backward(fl.grad_in, a.mb, a.chunk));
  }
}

template <class T>
void Executor<T>::post_next_receives(long consumed) {
  // One receive of each kind is posted ahead: the earliest of its kind not yet consumed (`consumed` is the index of
  // the receive just completed, −1 at the start of the step).
  const ActionType kinds[2] = {ActionType::RecvForward, ActionType::RecvBackward};
  for (int d = 0; d < 2; ++d) {
    auto& k = next_recv_[d];
    while (k < actions_.size() && (actions_[k].type != kinds[d] || long(k) <= consumed)) ++k;
    if (k < actions_.size() && !posted_.count(k)) post_receive(k);
  }
}

template <class T>
void Executor<T>::progress() {
  for (std::size_t i = 0; i < sends_.size();) {
    if (sends_[i].req.test()) {
      sends_[i].pool->put(sends_[i].buf);
      sends_[i] = std::move(sends_.back());
      sends_.pop_back();
    } else {
      ++i;
    }
  }
  for (auto& [i, r] : posted_) r.test();
  for (auto* r : reducers_) r->progress();
}

template <class T>
double Executor<T>::wait(coll::Request& r) {
  const double t0 = wall_time_s(), since = coll::watchdog_now();
  for (unsigned i = 1; !r.test(); ++i) {
    progress();
    coll::idle();
    if (i % coll::kWatchdogEvery == 0) coll::watchdog_check(since, r.what(), r.peer());
  }
  return wall_time_s() - t0;
}

template <class T>
bool Executor<T>::last_of_chunk(const Action& a) const {
  return a.mb == last_mb_[std::size_t(a.chunk)];
}

template <class T>
StageStep Executor<T>::run(const std::vector<models::Batch<T>>& mbs, double loss_scale, double step_start_s,
                           std::vector<TimelineEntry>* timeline) {
  StageStep st;
  next_recv_[0] = next_recv_[1] = 0;
  post_next_receives(-1);
  const double t_begin = fenced_time_s();
  const int last_chunk = s_.chunks() - 1;
  for (std::size_t i = 0; i < actions_.size(); ++i) {
    const Action& a = actions_[i];
    const int c = a.chunk * s_.p + stage_;
    auto& chunk = *chunks_[std::size_t(a.chunk)];
    auto* reducer = reducers_[std::size_t(a.chunk)];
    const auto& mb = mbs[std::size_t(a.mb)];
    const double t0 = fenced_time_s();
    const double hooks0 = reducer->exposed_s();
    const typename ModelChunk<T>::LayerHook between = [&](std::size_t) { progress(); };
    const typename ModelChunk<T>::LayerHook grads_done = [&](std::size_t layer) {
      reducer->backward_done(layer);
      progress();
    };
    switch (a.type) {
      case ActionType::RecvForward:
      case ActionType::RecvBackward: {
        if (!posted_.count(i)) post_receive(i);
        auto it = posted_.find(i);
        st.bubble_s += wait(it->second);
        posted_.erase(it);
        post_next_receives(long(i));
        break;
      }
      case ActionType::Forward: {
        auto& fl = flight_[{a.mb, a.chunk}];
        fl.act = acquire(a.chunk);
        const View2<T> out = chunk.forward(mb, *fl.act, fl.input, between);
        st.aux_sum += chunk.aux_loss(*fl.act);
        if (c == last_chunk)  // score the microbatch; dlogits replace the logits in place
          st.loss_sum += chunk.loss_and_grad(out, mb.targets, acc_t<T>(loss_scale), losses_[std::size_t(a.chunk)], out);
        // Recomputing, the activations go back to the pool once the output is sent; B rebuilds them from the input.
        if (recompute_ && c == last_chunk) {
          release(a.chunk, fl.act);
          fl.act = nullptr;
        }
        st.peak_inflight = std::max(st.peak_inflight, ++inflight_);
        break;
      }
      case ActionType::SendForward: {
        auto& fl = flight_[{a.mb, a.chunk}];
        auto& pool = send_fwd_pool_[std::size_t(a.chunk)];
        View2<T> buf = pool.get();
        Kokkos::deep_copy(buf, fl.act->outputs.back());
        sends_.push_back(Send{links_.send_forward(buf, a.mb, a.chunk), buf, &pool});
        if (recompute_) {
          release(a.chunk, fl.act);
          fl.act = nullptr;
        }
        break;
      }
      case ActionType::Backward: {
        auto& fl = flight_[{a.mb, a.chunk}];
        if (recompute_) {  // rerun the forward from the kept input
          fl.act = acquire(a.chunk);
          const View2<T> out = chunk.forward(mb, *fl.act, fl.input, between);
          if (c == last_chunk) chunk.loss_and_grad(out, mb.targets, acc_t<T>(loss_scale), losses_[std::size_t(a.chunk)], out);
        }
        for (auto& ls : fl.act->states) ls->loss_grad_scale = loss_scale;  // a layer's own loss term (MoE)
        const View2<T> dy = c == last_chunk ? fl.act->outputs.back() : fl.grad_in;
        if (c > 0) fl.dx = send_bwd_pool_[std::size_t(a.chunk)].get();
        const bool finishes = !split_ && last_of_chunk(a);
        chunk.backward(mb, *fl.act, fl.input, dy, fl.dx, split_, finishes ? grads_done : between);
        if (c < last_chunk) {
          grad_pool_[std::size_t(a.chunk)].put(fl.grad_in);
          fl.grad_in = View2<T>();
        }
        break;
      }
      case ActionType::SendBackward: {
        auto& fl = flight_[{a.mb, a.chunk}];
        auto& pool = send_bwd_pool_[std::size_t(a.chunk)];
        sends_.push_back(Send{links_.send_backward(fl.dx, a.mb, a.chunk), fl.dx, &pool});
        fl.dx = View2<T>();
        break;
      }
      case ActionType::Weight: {
        auto& fl = flight_[{a.mb, a.chunk}];
        chunk.backward_weight(mb, *fl.act, fl.input, last_of_chunk(a) ? grads_done : between);
        break;
      }
    }
    // Release what the microbatch-chunk no longer needs: its activations and input after B (or W).
    if (a.type == (split_ ? ActionType::Weight : ActionType::Backward)) {
      auto it = flight_.find({a.mb, a.chunk});
      release(a.chunk, it->second.act);
      it->second.act = nullptr;
      if (c > 0) input_pool_[std::size_t(a.chunk)].put(it->second.input);
      it->second.input = View2<T>();
      --inflight_;
    }
    auto it = flight_.find({a.mb, a.chunk});
    if (it != flight_.end() && !it->second.act && !it->second.input.data() && !it->second.grad_in.data() &&
        !it->second.dx.data())
      flight_.erase(it);
    const double t1 = fenced_time_s();
    const double in_hooks = reducer->exposed_s() - hooks0;
    switch (a.type) {
      case ActionType::Forward: st.forward_s += t1 - t0 - in_hooks; break;
      case ActionType::Backward: st.backward_s += t1 - t0 - in_hooks; break;
      case ActionType::Weight: st.weight_s += t1 - t0 - in_hooks; break;
      case ActionType::SendForward:
      case ActionType::SendBackward: st.p2p_s += t1 - t0; break;
      default: break;
    }
    if (timeline && is_compute(a.type)) timeline->push_back({a.type, a.mb, a.chunk, t0 - step_start_s, t1 - step_start_s});
  }
  for (auto& snd : sends_) st.bubble_s += wait(snd.req);
  for (auto& snd : sends_) snd.pool->put(snd.buf);
  sends_.clear();
  PARTRAIN_REQUIRE(posted_.empty() && flight_.empty() && inflight_ == 0, "pipeline step ended with transfers in flight");
  st.span_s = fenced_time_s() - t_begin;
  return st;
}

template class Executor<float>;
template class Executor<double>;
template class Executor<bf16>;
template class Executor<fp16>;

}  // namespace partrain::parallel::pipeline
