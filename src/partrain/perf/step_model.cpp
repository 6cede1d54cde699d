#include "partrain/perf/step_model.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "partrain/models/gpt.hpp"
#include "partrain/models/mlp.hpp"
#include "partrain/models/nmt.hpp"
#include "partrain/parallel/nmt/wavefront.hpp"
#include "partrain/parallel/ps/hybrid_trainer.hpp"
#include "partrain/parallel/pipeline/schedule.hpp"

namespace partrain::perf {
namespace {

std::unique_ptr<models::Model<double>> declare(const models::ModelSpec& spec) {
  auto m = models::make_layers<double>(spec);
  m->build(0, false, false);
  return m;
}

/// The side of the model's typical gemm: rows × W × W.
double width(const models::ModelSpec& s) {
  if (s.kind == "gpt") return double(s.gpt.channels);
  if (s.kind == "nmt") return double(s.nmt.hidden);
  double w = 1;
  if (s.kind == "sparse_mlp") {
    for (auto x : s.sparse.widths) w = std::max(w, double(x));
    return std::max(w, double(s.sparse.concat_width()));
  }
  for (auto x : s.mlp.widths) w = std::max(w, double(x));
  return w;
}

/// Bytes of one element of the model's dtype; fp16 and bf16 mean mixed-precision training (step_model.hpp).
double elem_bytes(const std::string& dtype) { return dtype == "fp64" ? 8 : is_half(dtype) ? 2 : 4; }

/// Bytes the optimizer streams per parameter: read p, g, write p; momentum's m read and written; Adam's m and v;
/// AdaGrad's accumulator.
/// Mixed precision: the fp32 gradient read, the fp32 master copy, m and v read and written, the half copy written.
double optimizer_bytes_per_param(const models::OptimizerConfig& o, const std::string& dtype) {
  if (is_half(dtype))
    return 4 + 8 + 2 + (o.kind == "sgd" ? (o.momentum > 0 ? 8 : 0) : o.kind == "adagrad" ? 8 : 16);
  const double elem = elem_bytes(dtype);
  if (o.kind == "sgd") return elem * (o.momentum > 0 ? 5 : 3);
  if (o.kind == "adagrad") return elem * 5;
  return elem * 7;
}

/// Seconds of the optimizer over `params` parameters: the measured kernel rate, or its streaming bound.
double optimizer_seconds(const models::OptimizerConfig& o, double params, const std::string& dtype,
                         const MachineProfile& p) {
  const double stream = params * optimizer_bytes_per_param(o, dtype) / p.memory_Bps;
  // AdaGrad without a rate of its own (an older profile): Adam's, a square root and a divide per element as well
  const double rate = o.kind == "sgd" ? p.sgd_pps : o.kind == "adagrad" && p.adagrad_pps > 0 ? p.adagrad_pps : p.adam_pps;
  return rate > 0 ? std::max(stream, params / rate) : stream;
}

void add_note(std::string* note, const std::string& what) {
  if (note && note->find(what) == std::string::npos) *note += (note->empty() ? "" : "; ") + what;
}

/// Ranks of one group on a node: the group's members are `stride` ranks apart (the grid's order: tp, then dp, then
/// pp — core/grid.hpp), so a node of `ranks_per_node` ranks holds ranks_per_node / stride of them (0: one node).
int group_per_node(int group, int stride, int ranks_per_node) {
  if (ranks_per_node <= 0) return group;
  return std::clamp(ranks_per_node / std::max(1, stride), 1, group);
}
bool spans(int group, int stride, int ranks_per_node) { return group_per_node(group, stride, ranks_per_node) < group; }

/// An allreduce among `group` ranks, `per_node` of them on each node: the flat algorithm, or — across nodes, for
/// "hier" or "auto" — the hierarchical one (reduce-scatter within each node, allreduce of a node's share across the
/// nodes, allgather within the node), whichever is faster for "auto".
double allreduce_seconds(const MachineProfile& p, const std::string& algo, int group, double bytes, int per_node,
                         std::string* note) {
  const bool sp = per_node < group;
  const double flat = algo == "hier" ? -1 : collective_seconds(p, algo, "allreduce", group, bytes, sp, note);
  if (!sp || (algo != "auto" && algo != "hier") || group % per_node != 0) return flat;
  std::string ignored;
  const int nodes = group / per_node;
  const double rs = collective_seconds(p, "auto", "reduce_scatter", per_node, bytes, false, &ignored);
  const double ar = collective_seconds(p, "auto", "allreduce", nodes, bytes / per_node, true, &ignored);
  const double ag = collective_seconds(p, "auto", "allgather", per_node, bytes, false, &ignored);
  if (rs < 0 || ar < 0 || ag < 0) return flat;
  const double hier = rs + ar + ag;
  return flat < 0 ? hier : std::min(flat, hier);
}

/// The bucketed gradient allreduce of `bytes` among `group` ranks `stride` apart, overlapped with `backward_s` but
/// for its last bucket.
void gradient_allreduce(const MachineProfile& p, const StepInputs& in, int group, int stride, double bytes,
                        double backward_s, StepPrediction& r) {
  if (group <= 1 || bytes <= 0) return;
  const int per_node = group_per_node(group, stride, in.ranks_per_node);
  const double bucket = std::max(1.0, std::min(in.bucket_bytes, bytes)), nb = std::ceil(bytes / bucket);
  const double last = bytes - (nb - 1) * bucket;
  const double t_full = allreduce_seconds(p, in.algo, group, bucket, per_node, &r.note);
  const double t_last = allreduce_seconds(p, in.algo, group, last, per_node, &r.note);
  if (t_full < 0 || t_last < 0) return;
  const double pure = (nb - 1) * t_full + t_last;
  r.comm_pure_s += pure;
  r.comm_exposed_s += in.overlap ? std::max(t_last, pure - backward_s * (nb - 1) / nb) : pure;
}

/// Tensor parallelism's collectives of one transformer block on activations of `act` bytes: 2 allreduces forward
/// and 2 backward (or, with sequence parallelism, an allgather and a reduce-scatter in place of each: the same
/// bytes); never overlapped. Negative when the profile has no fit.
double tp_block_seconds(const MachineProfile& p, const StepInputs& in, double act, std::string* note) {
  const int tp = std::max(1, in.tp);
  if (tp <= 1) return 0;
  const bool sp = spans(tp, 1, in.ranks_per_node);
  if (in.sequence_parallel) {
    const double ag = collective_seconds(p, in.tp_algo, "allgather", tp, act, sp, note);
    const double rs = collective_seconds(p, in.tp_algo, "reduce_scatter", tp, act, sp, note);
    return ag < 0 || rs < 0 ? -1 : 2 * (ag + rs);
  }
  const double ar = collective_seconds(p, in.tp_algo, "allreduce", tp, act, sp, note);
  return ar < 0 ? -1 : 4 * ar;
}

/// The gemm rate of an m×n×k product in the model's dtype: the profile's class rate, half-precision's for fp16/bf16,
/// half the fp32 rate for fp64.
double gemm_rate(const MachineProfile& p, const std::string& dtype, double m, double n, double k) {
  return p.gemm_rate(m, n, k, is_half(dtype)) * (dtype == "fp64" ? 0.5 : 1.0);
}

/// Context parallelism of the GPT's attention (docs/cp.md) over a replica's `local` sequences, every layer, added to
/// r. Ring: the blocks the zigzag skips are not computed — of the (2·cp)² chunk pairs only cp·(2·cp + 1) are, at the
/// profile's block_attention_fps (the online softmax, the backward recomputing the scores) — and
/// each of the cp − 1 forward hops of the keys and values (2·b·Tl·w elements, a point-to-point transfer) hides behind
/// one step's blocks; backward, the keys and values go round again with their gradients (two transfers in flight
/// behind each step's blocks) and the last gradient hop home is exposed. Ulysses: four all-to-alls (q, k, v and the
/// output forward; their gradients backward), never overlapped.
void context_parallel(const MachineProfile& p, const StepInputs& in, double local, StepPrediction& r) {
  const auto& g = in.model.gpt;
  const int cp = in.cp, tp = std::max(1, in.tp);
  const double elem = elem_bytes(in.model.dtype), T = double(g.seq_len), Tl = T / cp, L = double(g.layers);
  const double w = double(g.channels) / tp, d = double(g.channels) / double(g.heads);
  const double rate = p.attention_fps > 0 && !is_half(in.model.dtype) ? p.attention_fps : gemm_rate(p, in.model.dtype, Tl, T, d);
  const double dense = 4.0 * local * Tl * T * w / rate;  // one layer's attention, forward
  const bool sp = spans(cp, tp, in.ranks_per_node);
  if (in.cp_kind == "ring") {
    // the cp·(2·cp + 1) unmasked chunk pairs, at the block kernels' rate where the profile has it
    const double blocks = p.block_attention_fps > 0 && !is_half(in.model.dtype) ? p.block_attention_fps : rate;
    const double attn = 4.0 * local * Tl * T * w * (2.0 * cp + 1) / (4.0 * cp) / blocks;
    r.forward_s -= L * (dense - attn);
    r.backward_s -= 2 * L * (dense - attn);
    const double hop = collective_seconds(p, "ring", "allgather", 2, 2 * 2 * local * Tl * w * elem, sp, &r.note);
    if (hop < 0) return;
    const double step_f = attn / cp, step_b = 2 * attn / cp;
    auto over = [](double t, double hidden) { return std::max(0.0, t - hidden); };
    const double fwd = (cp - 1) * over(hop, step_f);
    const double bwd = over(hop, step_b) + (cp - 2) * over(2 * hop, step_b) + over(hop, step_b) + hop;
    r.comm_pure_s += L * (3.0 * cp - 2) * hop;
    r.comm_exposed_s += L * (fwd + bwd);
  } else {
    const double a = collective_seconds(p, in.cp_algo, "alltoall", cp, 3 * local * Tl * w * elem, sp, &r.note);
    const double b = collective_seconds(p, in.cp_algo, "alltoall", cp, local * Tl * w * elem, sp, &r.note);
    if (a < 0 || b < 0) return;
    r.comm_pure_s += L * 2 * (a + b);
    r.comm_exposed_s += L * 2 * (a + b);
  }
}

/// A pointwise pass over `n` elements: the profile's (fp32) kernel rate, or reading the input and writing the output
/// at the memory rate — the latter always in half precision (2-byte elements).
double pointwise_seconds(const MachineProfile& p, double n, double elem, bool half) {
  if (half && p.pointwise_half_eps > 0) return n / p.pointwise_half_eps;  // measured (partrain-calibrate)
  return p.pointwise_eps > 0 && !half ? n / p.pointwise_eps : 2 * n * elem / p.memory_Bps;
}

struct FwdBwd {
  double forward = 0, backward = 0;
};

/// One NMT LSTM over `steps` time steps of `rows` rows, input width `in`, `units` hidden, in seconds: its gemms at
/// the thin rate (or their side's class) plus the part that does not scale with the rows — each time step's 2 gemms
/// forward and 4 backward stream the weight 3 times (its product, the input or hidden gradient, its gradient), a
/// third of it forward — and its cells at the profile's LSTM rates (forward alone and both; without them, 5
/// transcendentals a unit at the pointwise rate each way). Backward: twice the gemms.
FwdBwd lstm_seconds(const MachineProfile& p, const std::string& dtype, double rows, double steps, double in,
                    double units) {
  const double elem = elem_bytes(dtype);
  const bool half = is_half(dtype);
  const double weights = 4.0 * units * (in + units), flops = 2.0 * rows * steps * weights;
  const double rate = gemm_rate(p, dtype, rows, 4 * units, in);
  const double fixed = p.thin_s_per_B > 0 && !half ? 3 * steps * weights * elem * p.thin_s_per_B : 0.0;
  const double n = rows * steps * units;
  const double cells = p.lstm_ups > 0 && !half ? n / p.lstm_ups : 2 * pointwise_seconds(p, 5 * n, elem, half);
  const double cells_f = p.lstm_ups > 0 && p.lstm_forward_ups > 0 && !half ? std::min(cells, n / p.lstm_forward_ups)
                                                                            : cells / 2;
  return {flops / rate + fixed / 3 + cells_f, 2 * flops / rate + 2 * fixed / 3 + (cells - cells_f)};
}

/// The source attention (kernels/source_attention.hpp) for `steps` query steps of `rows` rows over S source steps of
/// width H, each way: a loop of its own, not a gemm — its multiply-adds at the pointwise kernels' element rate (the
/// backward's twice the multiply-adds in about the same time here).
double attention_seconds(const MachineProfile& p, const std::string& dtype, double rows, double steps, double S,
                         double H) {
  const double flops = 4.0 * rows * steps * S * H;
  if (p.pointwise_eps > 0 && !is_half(dtype)) return flops / 2 / p.pointwise_eps;
  return flops / gemm_rate(p, dtype, rows, S, H);
}

}  // namespace

double collective_seconds(const MachineProfile& p, const std::string& algo, const std::string& op, int group,
                          double bytes, bool spans_nodes, std::string* note) {
  if (group <= 1 || bytes <= 0) return 0;
  const std::string scope = spans_nodes ? "inter" : "intra";
  if (algo == "auto") {  // a tuner's choice (NCCL's, partrain's auto): the fastest fitted algorithm at this size
    double best = -1;
    for (const auto& c : p.collectives)
      if (c.op == op && c.scope == scope && &c == p.find(c.algo, op, scope, bytes)) {  // each algorithm's range
        try {
          const double t = collective_time(c.algo, op, group, bytes, c.link);
          if (best < 0 || t < best) best = t;
        } catch (const RuntimeError&) {
        }
      }
    if (best >= 0) return best;
    add_note(note, "no " + op + " fit (" + scope + ") in the profile: not predicted");
    return -1;
  }
  const CollectiveFit* fit = p.find(algo, op, scope, bytes);
  if (!fit && algo == "shm" && spans_nodes) add_note(note, "shm spans no nodes: ring's fit used");
  if (!fit && algo != "ring") {
    fit = p.find("ring", op, scope, bytes);
    if (fit) add_note(note, "no " + algo + " " + op + " fit: ring's used");
  }
  if (!fit)
    for (const auto& c : p.collectives)
      if (c.op == op && c.scope == scope) {
        fit = p.find(c.algo, op, scope, bytes);
        add_note(note, "no ring " + op + " fit: " + c.algo + "'s used");
        break;
      }
  if (!fit) {
    add_note(note, "no " + op + " fit (" + scope + ") in the profile: not predicted");
    return -1;
  }
  try {
    return collective_time(fit->algo, op, group, bytes, fit->link);
  } catch (const RuntimeError&) {
    return collective_time("ring", op, group, bytes, fit->link);
  }
}

StepPrediction predict_compute(const models::ModelSpec& spec, std::int64_t samples, const MachineProfile& p,
                               double shard) {
  StepPrediction r;
  const auto m = declare(spec);
  const double elem = elem_bytes(spec.dtype);
  const bool half = is_half(spec.dtype);
  if (half && !p.has_half()) r.note = "the profile has no gemm_half_* rates: fp32's used";
  auto gemm = [&](double a, double b, double c) { return gemm_rate(p, spec.dtype, a, b, c); };
  auto pointwise = [&](double n) { return pointwise_seconds(p, n, elem, half); };
  const auto rows = samples * models::rows_per_sample(spec);
  // the NMT's LSTMs multiply per time step: rows = the batch
  const double gemm_rows = spec.kind == "nmt" ? double(samples) : double(rows);
  const double rate = gemm(gemm_rows, 4 * width(spec) / shard, width(spec));
  bool all_known = true;
  double layer_flops = 0;
  for (const auto& l : m->layers()) layer_flops += l->forward_flops(rows);
  const double model_flops = m->forward_flops(samples);
  if (spec.kind == "nmt") {
    // The NMT runs its LSTMs one time step at a time (lstm_seconds), the source attention as a loop of its own, the
    // generator as one large gemm over all the target rows, and the generator's and attention's softmax pointwise.
    const auto& c = spec.nmt;
    const double B = double(samples), S = double(c.max_len), E = double(c.embed), H = double(c.hidden),
                 V = double(c.vocab);
    FwdBwd lstms;
    auto add = [&](double in, double units, double count) {
      const auto t = lstm_seconds(p, spec.dtype, B, S, in, units);
      lstms.forward += count * t.forward;
      lstms.backward += count * t.backward;
    };
    add(E, H / 2, 2);                                // the bidirectional layer's two directions
    add(H, H, double(c.enc_layers - 1));             // the encoder's other layers
    add(E, H, 1);                                    // the first decoder layer
    add(2 * H, H, double(c.dec_layers - 1));         // the decoder's others (input feeding: [h, context])
    const double generator_s = 2.0 * B * S * H * V / gemm(B * S, V, H);
    const double attention_s = attention_seconds(p, spec.dtype, B, S, S, H);
    const double sm_s = pointwise(B * S * (V + S));
    r.forward_s = lstms.forward + generator_s + sm_s + attention_s;
    r.backward_s = lstms.backward + 2 * generator_s + sm_s + attention_s;
    if (p.gemm_thin <= 0 && !half) add_note(&r.note, "the profile has no gemm_thin: the LSTM steps' gemms at the class of their side");
    return r;
  }
  if (layer_flops < 0.5 * model_flops) {  // a model that is not a list of layers: its FLOPs at the gemm rate
    r.forward_s = model_flops / rate;
    r.backward_s = 2 * model_flops / rate;
    add_note(&r.note, "compute from the model's FLOPs alone (no per-layer traffic)");
    return r;
  }
  for (const auto& l : m->layers()) {
    double flops = l->forward_flops(rows);
    double act = l->activation_elements(rows);
    if (act < 0) {
      all_known = false;
      act = double(rows) * double(l->out_width());
    }
    // a GPT block's causal attention (its 4·N·T·C FLOPs and its N·H·T probabilities) at the profile's measured
    // attention rate, where it has one: its products have one side the head width and its softmax is T × T, neither
    // of which the square gemms' classes or the GELU rate price (docs/model.md)
    double attention_s = 0;
    if (spec.kind == "gpt" && p.attention_fps > 0 && !half && l->name().rfind("blocks.", 0) == 0) {
      const double a = 4.0 * double(rows) * double(spec.gpt.seq_len) * double(spec.gpt.channels);
      flops -= a;
      act -= double(rows) * double(spec.gpt.heads) * double(spec.gpt.seq_len);
      attention_s = a / p.attention_fps;
    }
    // the gemms at the gemm rate, then every activation element through a pointwise kernel (bias, activation,
    // softmax, residual: the profile's rate, or the memory rate for reading the input and writing the output);
    // backward twice both
    const double pw = pointwise(act);
    r.forward_s += flops / rate + pw + attention_s;
    r.backward_s += 2 * (flops / rate + pw + attention_s);
  }
  if (!all_known) add_note(&r.note, "some layers' activation traffic estimated from their output width");
  return r;
}

StepPrediction predict_step(const StepInputs& in, const MachineProfile& p) {
  const int dp = std::max(1, in.dp), tp = std::max(1, in.tp), pp = std::max(1, in.pp);
  const std::int64_t local = std::max<std::int64_t>(1, in.train.global_batch / dp);
  const auto m = declare(in.model);
  const double elem = elem_bytes(in.model.dtype);
  const double psi = double(m->params().numel());
  const std::string s = in.strategy;
  // a pipeline stage computes microbatches: its gemms have the microbatch's rows
  const int mb = s == "pp" ? std::max(1, in.microbatches) : 1;
  StepPrediction r = predict_compute(in.model, std::max<std::int64_t>(1, local / mb), p, s == "tp" || s == "pp" ? tp : 1);
  r.forward_s *= mb;
  r.backward_s *= mb;

  if (s == "serial" || s == "dp" || s == "tp") {
    // tensor parallelism: a rank computes 1/t of every block (the replicated LayerNorms are small) and keeps 1/t of
    // the parameters; each block does 2 allreduces forward and 2 backward of the activations (b·T·C), not overlapped.
    // Context parallelism: a rank computes 1/cp of every sequence (context_parallel prices its attention's transfers)
    // and the gradients are reduced over the d·cp ranks holding the same parameters.
    const int cp = s == "tp" ? std::max(1, in.cp) : 1;
    r.forward_s /= tp * cp;
    r.backward_s /= tp * cp;
    r.optimizer_s = optimizer_seconds(in.train.optimizer, psi / tp, in.model.dtype, p);
    if (cp > 1 && in.model.kind == "gpt") context_parallel(p, in, double(local), r);
    if (tp > 1) {
      const double rows = double(local) * double(models::rows_per_sample(in.model)) / cp;
      const double layers = in.model.kind == "gpt" ? double(in.model.gpt.layers) : 1.0;
      const double per_block = tp_block_seconds(p, in, rows * width(in.model) * elem, &r.note);
      if (per_block > 0) {
        r.comm_pure_s += layers * per_block;
        r.comm_exposed_s += layers * per_block;
      }
      if (in.model.kind != "gpt") add_note(&r.note, "tensor parallelism modelled for the GPT's blocks only");
    }
    gradient_allreduce(p, in, dp * cp, tp, psi / tp * (in.grad_reduce_fp32 && is_half(in.model.dtype) ? 4.0 : elem),
                       r.backward_s, r);
  } else if (s == "pp") {
    // p stages of equal compute; m microbatches; the schedule's bubble stretches the compute
    namespace pl = parallel::pipeline;
    pl::ScheduleSpec spec;
    pl::parse(in.schedule, spec.kind);
    spec.p = pp;
    spec.m = mb;
    spec.v = std::max(1, in.chunks);
    const double bubble = pp > 1 ? pl::predicted_bubble_fraction(spec) : 0.0;
    r.forward_s /= (pp * tp);
    r.backward_s /= (pp * tp);
    if (in.recompute) r.backward_s += r.forward_s;
    const double act = double(local) / mb * double(models::rows_per_sample(in.model)) * width(in.model) * elem;
    // a stage's tensor-parallel collectives: its blocks' per microbatch (the recomputed forward's again), on the
    // critical path of every microbatch — the bubble stretches them with the compute
    double tp_s = 0;
    if (tp > 1 && in.model.kind == "gpt") {
      const double per_block = tp_block_seconds(p, in, act, &r.note);
      if (per_block > 0) tp_s = per_block * (in.recompute ? 1.5 : 1.0) * double(in.model.gpt.layers) / pp * mb;
      r.comm_pure_s += tp_s;
      r.comm_exposed_s += tp_s;
    }
    const double busy = r.forward_s + r.backward_s + tp_s;
    r.bubble_s = bubble < 1 ? busy * bubble / (1 - bubble) : 0;
    // every microbatch crosses p − 1 boundaries forward and back; the fill and drain ones are on the critical path.
    // Neighbouring stages are tp·dp ranks apart: across nodes once a stage's ranks fill a node.
    if (pp > 1) {
      const double one = collective_seconds(p, "ring", "allgather", 2, 2 * act, spans(pp, tp * dp, in.ranks_per_node), &r.note);
      if (one > 0) {
        r.comm_pure_s += 2.0 * mb * spec.v * one;
        r.comm_exposed_s += 2.0 * (pp - 1) * one;
      }
    }
    r.optimizer_s = optimizer_seconds(in.train.optimizer, psi / (pp * tp), in.model.dtype, p);
    gradient_allreduce(p, in, dp, tp, psi / (pp * tp) * elem, r.backward_s, r);
  } else if (s == "zero") {
    // stage 0: partrain-dp; 1–2: gradients reduce-scattered (bucketed, overlapped like the allreduce), the optimizer
    // on 1/d, the parameters allgathered after it (exposed); 3: the parameters gathered again for the backward
    const bool sp = spans(dp, 1, in.ranks_per_node);
    if (in.zero_stage == 0 || dp == 1) {
      r.optimizer_s = optimizer_seconds(in.train.optimizer, psi, in.model.dtype, p);
      gradient_allreduce(p, in, dp, 1, psi * elem, r.backward_s, r);
    } else {
      r.optimizer_s = optimizer_seconds(in.train.optimizer, psi / dp, in.model.dtype, p);
      const double bytes = psi * elem, bucket = std::max(1.0, std::min(in.bucket_bytes, bytes));
      const double nb = std::ceil(bytes / bucket);
      const double rs = nb * collective_seconds(p, in.algo, "reduce_scatter", dp, bucket, sp, &r.note);
      const double ag = nb * collective_seconds(p, in.algo, "allgather", dp, bucket, sp, &r.note);
      if (rs >= 0 && ag >= 0) {
        const double gathers = in.zero_stage == 3 ? 2 * ag : ag;
        r.comm_pure_s += rs + gathers;
        const double rs_exposed = in.overlap ? std::max(rs / nb, rs - r.backward_s * (nb - 1) / nb) : rs;
        // stage 3 with prefetch hides all but the first layer's gather behind the compute
        const double g_exposed = in.zero_stage == 3 ? (in.prefetch ? ag + ag / std::max(1.0, nb) : 2 * ag) : ag;
        r.comm_exposed_s += rs_exposed + g_exposed;
      }
    }
  } else if (s == "nmt") {
    // k model-parallel ranks per replica run the wavefront; the model's fill and drain idle stretches the compute
    const int k = pp;
    // the wavefront's schedule with every chunk's cost in seconds (the pieces of predict_compute), so that the
    // ranks' shares and the fill and drain follow what each part costs here, not its FLOPs
    parallel::nmt::Placement place(in.model.nmt, k);
    const auto& c = in.model.nmt;
    const double rows = double(local), S = double(c.max_len), H = double(c.hidden), V = double(c.vocab);
    const std::string dtype = in.model.dtype;
    namespace nm = parallel::nmt;
    nm::ChunkCosts costs;
    costs.forward = [&](const nm::Unit& u, double steps, double i, double units) {
      return u.kind == nm::UnitKind::Attention ? attention_seconds(p, dtype, rows, steps, S, H)
                                               : lstm_seconds(p, dtype, rows, steps, i, units).forward;
    };
    costs.backward = [&](const nm::Unit& u, double steps, double i, double units) {
      return u.kind == nm::UnitKind::Attention ? attention_seconds(p, dtype, rows, steps, S, H)
                                               : lstm_seconds(p, dtype, rows, steps, i, units).backward;
    };
    costs.generator = 3 * 2.0 * rows * S * H * V / k /
                      gemm_rate(p, dtype, rows * S, V / k, H);
    const auto w = nm::wavefront_model(c, place, in.time_chunk, costs);
    double busy_max = 0, busy_sum = 0;
    for (double b : w.busy) {
      busy_max = std::max(busy_max, b);
      busy_sum += b;
    }
    if (busy_sum > 0) {  // the busiest rank's share of the work, then its idle time in the makespan
      const double total = r.forward_s + r.backward_s;
      r.forward_s *= busy_max / busy_sum;
      r.backward_s *= busy_max / busy_sum;
      r.bubble_s = total * (w.makespan - busy_max) / busy_sum;
    }
    r.optimizer_s = optimizer_seconds(in.train.optimizer, psi / k, in.model.dtype, p);
    gradient_allreduce(p, in, dp, k, psi / k * elem, r.backward_s, r);  // replicas are k ranks apart
    add_note(&r.note, "the wavefront's messages are not modelled");
  } else if (s == "ps" && in.ps_hybrid) {
    // the sparse-embedding server (parallel/ps/hybrid_trainer.hpp): a worker pulls the distinct rows its share
    // touches (the dataset's expected count) through the S servers, whose links carry every worker's keys and rows,
    // computes, pushes the rows' gradients the same way while the dense buckets' allreduce among the W workers
    // overlaps the backward; the servers sum and update the pushed rows, the workers the dense parameters
    const auto& c = in.model.sparse;
    const int W = std::max(1, in.workers), S = std::max(1, in.servers);
    const std::int64_t per_worker = std::max<std::int64_t>(1, in.train.global_batch / W);
    r = predict_compute(in.model, per_worker, p);
    const double rows = double(c.tables) * models::ClickDataset<double>::expected_distinct(c.rows, per_worker * c.bag);
    const double tables = double(c.table_numel()), dense = psi - tables;
    const auto b = parallel::ps::hybrid_bytes(rows, double(c.dim), dense, tables, S, W, elem);
    // one transfer of x bytes over a link: a 2-rank allgather of 2x (the dense PS's convention); the pull is the
    // counts, the keys and the rows, the push the rows' gradients — each message of every worker through one server
    auto one = [&](double x) { return collective_seconds(p, "ring", "allgather", 2, 2 * x, false, &r.note); };
    const double keys = rows * 8 / S, vals = rows * double(c.dim) * elem / S;
    const double counts = one(8), t_keys = one(keys), t_vals = one(vals);
    if (counts > 0 && t_keys > 0 && t_vals > 0) {
      r.comm_pure_s = counts + double(W) * (t_keys + 2 * t_vals);
      r.comm_exposed_s = r.comm_pure_s;
    }
    gradient_allreduce(p, in, W, 1, dense * elem, r.backward_s, r);
    r.optimizer_s = optimizer_seconds(in.train.optimizer, dense, in.model.dtype, p) +
                    optimizer_seconds(in.train.optimizer, double(W) * rows * double(c.dim) / S, in.model.dtype, p);
    if (p.reduce_Bps > 0) r.optimizer_s += double(W) * rows * double(c.dim) / S * elem / p.reduce_Bps;
    r.sparse_rows = rows;
    r.sparse_bytes = b.hybrid();
    add_note(&r.note, "the hybrid's pulls and pushes are a bound: one server link carries every worker's share");
  } else if (s == "ps") {
    // a worker computes its share and pulls and pushes the whole model through the S servers, whose links carry
    // every worker's traffic; the servers apply the update (the optimizer over Ψ/S per worker push in asp)
    const int W = std::max(1, in.workers), S = std::max(1, in.servers);
    const std::int64_t per_worker = std::max<std::int64_t>(1, in.train.global_batch / W);
    r = predict_compute(in.model, per_worker, p);
    const double bytes = psi * elem;
    const double one = collective_seconds(p, "ring", "allgather", 2, 2 * bytes / S, false, &r.note);
    if (one > 0) {
      r.comm_pure_s = 2 * one * W;  // pull and push of every worker through one server's link
      r.comm_exposed_s = r.comm_pure_s;
    }
    const bool sync = in.ps_mode == "bsp" || in.ps_mode == "half_sync";
    r.optimizer_s = optimizer_seconds(in.train.optimizer, psi / S, in.model.dtype, p) * (sync ? 1 : W);
    // synchronous modes: each server sums the W workers' gradients of its shard (the reduction's γ) before it
    // updates, while the workers wait for the pull
    if (sync && p.reduce_Bps > 0) r.optimizer_s += double(W) * psi / S * elem / p.reduce_Bps;
    add_note(&r.note, "the parameter server's model is a bound: one server link carries every worker's pull and push");
  } else if (s == "ep") {
    // expert parallelism inside data parallelism (parallel/ep/): each rank computes its own batch's dense layers and
    // routers as a data-parallel rank does; its experts compute the rows the group routes to them — balanced, the
    // k rows per token predict_compute already prices, but every rank waits at the all-to-all for the busiest
    // expert rank: `imbalance` times that share. Four all-to-alls per MoE block (dispatch and combine, forward and
    // backward) of the kept rows, never overlapped; the shared parameters' gradients are summed over every rank,
    // the experts' over the ranks holding them (dp / ep, ep apart).
    const auto& g = in.model.gpt;
    const int ep = std::max(1, in.ep);
    std::int64_t blocks = 0;
    for (std::int64_t l = 0; l < g.layers; ++l) blocks += g.moe.is_moe_block(l) ? 1 : 0;
    const double k = double(g.moe.top_k), C = double(g.channels), E = double(g.moe.experts);
    const double rows = double(local) * double(g.seq_len);
    const double kept = std::min(1.0, double(g.moe.capacity(g.seq_len)) * E / (k * double(g.seq_len)));
    // the busiest expert rank's rows over the k·rows/ep a rank's experts take when all are kept and balanced: the
    // measured imbalance times the kept share, or at most the capacity's bound (cap per expert is about
    // capacity_factor times the balanced share) and all kept rows on one rank
    const double busiest = in.moe_imbalance > 0 ? in.moe_imbalance * kept
                                                : std::min(g.moe.capacity_factor, double(ep) * kept);
    const double expert_flops = double(blocks) * 16.0 * rows * k * C * C;  // forward, priced by predict_compute
    const double rate = gemm_rate(p, in.model.dtype, rows * k / E * double(ep), 4 * C, C);
    r.forward_s += (busiest - 1.0) * expert_flops / rate;
    r.backward_s += 2.0 * (busiest - 1.0) * expert_flops / rate;
    const double a2a_bytes = rows * k * kept * C * elem;
    if (ep > 1 && blocks > 0) {
      const double one = collective_seconds(p, in.a2a_algo, "alltoall", ep, a2a_bytes, spans(ep, 1, in.ranks_per_node), &r.note);
      if (one > 0) {
        r.comm_pure_s += 4.0 * double(blocks) * one;
        r.comm_exposed_s += 4.0 * double(blocks) * one;
      }
    }
    auto held = in.model;
    held.gpt.expert_first = 0;
    held.gpt.expert_count = 0;
    const double shared = double(declare(held)->params().numel());
    held.gpt.expert_count = g.moe.experts / ep;
    const double local_psi = double(declare(held)->params().numel());
    r.optimizer_s = optimizer_seconds(in.train.optimizer, local_psi, in.model.dtype, p);
    gradient_allreduce(p, in, dp, 1, shared * elem, r.backward_s, r);
    gradient_allreduce(p, in, dp / ep, ep, (local_psi - shared) * elem, r.backward_s, r);
  } else {
    add_note(&r.note, "no model for strategy " + s);
  }
  // more ranks on a node than it has cores: each rank gets cores/ranks of one (the waits yield)
  if (p.cores_per_node > 0 && in.ranks_on_node > p.cores_per_node) {
    const double share = double(in.ranks_on_node) / p.cores_per_node;
    r.forward_s *= share;
    r.backward_s *= share;
    r.bubble_s *= share;
    r.optimizer_s *= share;
    add_note(&r.note, std::to_string(in.ranks_on_node) + " ranks share " + std::to_string(p.cores_per_node) + " cores");
  }
  r.step_s = r.forward_s + r.backward_s + r.bubble_s + r.optimizer_s + r.comm_exposed_s;
  return r;
}

}  // namespace partrain::perf
