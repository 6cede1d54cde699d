// Synthetic, learnable datasets keyed by (seed, step, global sample index), so that any rank can generate any
// slice of any step's global batch and every layout sees the same data.
//
// TeacherDataset (MLP): x ~ N(0, 1) with x[s, j] = normal(s·d0 + j) of CounterRng(seed, "data.mlp.x", step);
//   label = argmax of a fixed random teacher  d0 → 32 → classes  (ReLU; weights teacher.layers.<i>.weight ~
//   N(0, 1/fan_in) from CounterRng(seed, name), biases 0), computed in double.
// MarkovDataset (GPT): each sequence is a walk of T+1 tokens on a fixed random graph where token v can be
//   followed by K = 4 tokens next(v, k) = below(v·K + k, V) of CounterRng(seed, "data.markov.next");
//   s_0 = below(s·(T+1), V) and s_{t+1} = next(s_t, below(s·(T+1) + t + 1, K)) of
//   CounterRng(seed, "data.markov.walk", step). tokens = s_0 … s_{T−1}, targets = s_1 … s_T.
//   The best achievable loss is about ln 4 ≈ 1.39 nats (less where next() repeats a token).
// TranslationDataset (NMT): token 0 is padding, 1 the decoder's begin-of-sentence, words are 2 … V−1. Sentence g of
//   a step has length L = min_len + below(g, max_len − min_len + 1) of CounterRng(seed, "data.nmt.length", step)
//   and source words x_t = 2 + below(g·S + t, V − 2) of CounterRng(seed, "data.nmt.words", step), S = max_len;
//   the target is a fixed permutation π of the words (CounterRng(seed, "data.nmt.map"), Fisher–Yates) applied to the
//   REVERSED source, y_t = π(x_{L−1−t}) — learnable only through attention, since y_0 depends on the last source
//   word. Sentences are padded to S: source pads are 0, target pads −1 (no loss), decoder inputs BOS, y_0 … y_{L−2}.
// ClickDataset (sparse MLP): sample g of a step has, for table f and bag slot b, the id
//   id = ⌊rows^u⌋ − 1,  u = uniform((g·F + f)·bag + b) of CounterRng(seed, "data.click.ids", step)
//   (log-uniform: P(id = k) ∝ ln((k+2)/(k+1)), Zipf-like — a few hot rows, a long tail), dense features
//   x_j = normal(g·dense + j) of CounterRng(seed, "data.click.x", step), and the label 1 where the teacher's score
//   Σ_f Σ_b h_f(id) + Σ_j w_j·x_j is positive (h_f(k) = normal(f·rows + k) of CounterRng(seed, "data.click.h"),
//   w_j = normal(j)/√dense of CounterRng(seed, "data.click.w")), else 0: learnable through the rows' embeddings.
#pragma once

#include <string>
#include <vector>

#include "partrain/models/layer.hpp"

namespace partrain::models {

template <class T>
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::string name() const = 0;
  /// Allocates a batch of `samples` samples.
  virtual Batch<T> allocate(std::int64_t samples) const = 0;
  /// Fills `batch` with global samples [first, first + batch.samples) of step `step`.
  virtual void fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const = 0;
  /// Rows the loss of samples [first, first + samples) of `step` averages over: −1 when every row counts
  /// (samples × rows per sample); the NMT task counts its real target tokens (known without communication).
  virtual std::int64_t loss_rows(std::uint64_t /*step*/, std::int64_t /*first*/, std::int64_t /*samples*/) const {
    return -1;
  }
};

template <class T>
class TranslationDataset : public Dataset<T> {
 public:
  TranslationDataset(std::uint64_t seed, std::int64_t vocab, std::int64_t min_len, std::int64_t max_len);
  std::string name() const override { return "reversed_translation"; }
  Batch<T> allocate(std::int64_t samples) const override;
  void fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const override;
  std::int64_t loss_rows(std::uint64_t step, std::int64_t first, std::int64_t samples) const override;
  /// Length of global sentence g of `step`.
  std::int64_t length(std::uint64_t step, std::int64_t g) const;

 private:
  std::uint64_t seed_;
  std::int64_t vocab_, min_len_, max_len_;
  std::vector<int> map_;  ///< π over the words' indices 0 … V−3
};

template <class T>
class TeacherDataset : public Dataset<T> {
 public:
  static constexpr std::int64_t kTeacherHidden = 32;
  TeacherDataset(std::uint64_t seed, std::int64_t inputs, std::int64_t classes);
  std::string name() const override { return "teacher_mlp"; }
  Batch<T> allocate(std::int64_t samples) const override;
  void fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const override;

 private:
  std::uint64_t seed_;
  std::int64_t inputs_, classes_;
  std::vector<double> w0_, w1_;  ///< [hidden, inputs], [classes, hidden]
};

template <class T>
class MarkovDataset : public Dataset<T> {
 public:
  static constexpr std::int64_t kBranching = 4;
  MarkovDataset(std::uint64_t seed, std::int64_t vocab, std::int64_t seq_len);
  std::string name() const override { return "markov_tokens"; }
  Batch<T> allocate(std::int64_t samples) const override;
  void fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const override;

 private:
  std::uint64_t seed_;
  std::int64_t vocab_, seq_len_;
};

template <class T>
class ClickDataset : public Dataset<T> {
 public:
  ClickDataset(std::uint64_t seed, std::int64_t tables, std::int64_t rows, std::int64_t bag, std::int64_t dense);
  std::string name() const override { return "zipf_clicks"; }
  /// The expected number of distinct ids among `draws` draws from one table of `rows` rows (Σ_k 1 − (1 − P(k))^draws):
  /// the rows a worker pulls per table (the performance model's sparse pull).
  static double expected_distinct(std::int64_t rows, std::int64_t draws);
  Batch<T> allocate(std::int64_t samples) const override;
  void fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const override;

 private:
  std::uint64_t seed_;
  std::int64_t tables_, rows_, bag_, dense_;
};

extern template class ClickDataset<float>;
extern template class ClickDataset<double>;
extern template class ClickDataset<bf16>;
extern template class ClickDataset<fp16>;
extern template class TeacherDataset<float>;
extern template class TeacherDataset<double>;
extern template class MarkovDataset<float>;
extern template class MarkovDataset<double>;
extern template class TranslationDataset<float>;
extern template class TranslationDataset<double>;
extern template class TeacherDataset<bf16>;
extern template class TeacherDataset<fp16>;
extern template class MarkovDataset<bf16>;
extern template class MarkovDataset<fp16>;
extern template class TranslationDataset<bf16>;
extern template class TranslationDataset<fp16>;

}  // namespace partrain::models
