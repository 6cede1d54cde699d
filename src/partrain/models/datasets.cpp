#include "partrain/models/datasets.hpp"

#include <algorithm>
#include <cmath>

#include "partrain/core/rng.hpp"

namespace partrain::models {

template <class T>
TeacherDataset<T>::TeacherDataset(std::uint64_t seed, std::int64_t inputs, std::int64_t classes)
    : seed_(seed), inputs_(inputs), classes_(classes) {
  const CounterRng r0(seed, "teacher.layers.0.weight"), r1(seed, "teacher.layers.1.weight");
  w0_.resize(kTeacherHidden * inputs);
  w1_.resize(classes * kTeacherHidden);
  for (size_t i = 0; i < w0_.size(); ++i) w0_[i] = r0.normal(i) / std::sqrt(double(inputs));
  for (size_t i = 0; i < w1_.size(); ++i) w1_[i] = r1.normal(i) / std::sqrt(double(kTeacherHidden));
}

template <class T>
Batch<T> TeacherDataset<T>::allocate(std::int64_t samples) const {
  Batch<T> b;
  b.samples = samples;
  b.features = View2<T>("act/batch.features", samples, inputs_);
  b.targets = IndexView1("act/batch.targets", samples);
  return b;
}

template <class T>
void TeacherDataset<T>::fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const {
  const CounterRng rx(seed_, "data.mlp.x", step);
  auto hx = Kokkos::create_mirror_view(batch.features);
  auto hy = Kokkos::create_mirror_view(batch.targets);
  std::vector<double> x(inputs_), h(kTeacherHidden);
  for (std::int64_t s = 0; s < batch.samples; ++s) {
    const std::uint64_t g = std::uint64_t(first + s);
    for (std::int64_t j = 0; j < inputs_; ++j) {
      x[j] = rx.normal(g * inputs_ + j);
      hx(s, j) = T(x[j]);
    }
    for (std::int64_t k = 0; k < kTeacherHidden; ++k) {
      double a = 0;
      for (std::int64_t j = 0; j < inputs_; ++j) a += w0_[k * inputs_ + j] * x[j];
      h[k] = a > 0 ? a : 0;
    }
    int best = 0;
    double best_v = -1e300;
    for (std::int64_t c = 0; c < classes_; ++c) {
      double a = 0;
      for (std::int64_t k = 0; k < kTeacherHidden; ++k) a += w1_[c * kTeacherHidden + k] * h[k];
      if (a > best_v) {
        best_v = a;
        best = int(c);
      }
    }
    hy(s) = best;
  }
  Kokkos::deep_copy(batch.features, hx);
  Kokkos::deep_copy(batch.targets, hy);
}

template <class T>
MarkovDataset<T>::MarkovDataset(std::uint64_t seed, std::int64_t vocab, std::int64_t seq_len)
    : seed_(seed), vocab_(vocab), seq_len_(seq_len) {}

template <class T>
Batch<T> MarkovDataset<T>::allocate(std::int64_t samples) const {
  Batch<T> b;
  b.samples = samples;
  b.tokens = IndexView1("act/batch.tokens", samples * seq_len_);
  b.targets = IndexView1("act/batch.targets", samples * seq_len_);
  return b;
}

template <class T>
void MarkovDataset<T>::fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const {
  const CounterRng next(seed_, "data.markov.next"), walk(seed_, "data.markov.walk", step);
  auto ht = Kokkos::create_mirror_view(batch.tokens);
  auto hy = Kokkos::create_mirror_view(batch.targets);
  const std::uint64_t L = std::uint64_t(seq_len_ + 1);
  for (std::int64_t s = 0; s < batch.samples; ++s) {
    const std::uint64_t base = std::uint64_t(first + s) * L;
    std::uint64_t tok = walk.below(base, std::uint64_t(vocab_));
    for (std::int64_t t = 0; t < seq_len_; ++t) {
      const std::uint64_t k = walk.below(base + t + 1, kBranching);
      const std::uint64_t nxt = next.below(tok * kBranching + k, std::uint64_t(vocab_));
      ht(s * seq_len_ + t) = int(tok);
      hy(s * seq_len_ + t) = int(nxt);
      tok = nxt;
    }
  }
  Kokkos::deep_copy(batch.tokens, ht);
  Kokkos::deep_copy(batch.targets, hy);
}

template <class T>
TranslationDataset<T>::TranslationDataset(std::uint64_t seed, std::int64_t vocab, std::int64_t min_len,
                                          std::int64_t max_len)
    : seed_(seed), vocab_(vocab), min_len_(min_len), max_len_(max_len) {
  const std::int64_t W = vocab - 2;
  map_.resize(std::size_t(W));
  for (std::int64_t i = 0; i < W; ++i) map_[std::size_t(i)] = int(i);
  const CounterRng r(seed, "data.nmt.map");
  for (std::int64_t i = W - 1; i > 0; --i) std::swap(map_[std::size_t(i)], map_[r.below(std::uint64_t(i), std::uint64_t(i + 1))]);
}

template <class T>
std::int64_t TranslationDataset<T>::length(std::uint64_t step, std::int64_t g) const {
  const CounterRng r(seed_, "data.nmt.length", step);
  return min_len_ + std::int64_t(r.below(std::uint64_t(g), std::uint64_t(max_len_ - min_len_ + 1)));
}

template <class T>
std::int64_t TranslationDataset<T>::loss_rows(std::uint64_t step, std::int64_t first, std::int64_t samples) const {
  std::int64_t n = 0;
  for (std::int64_t s = 0; s < samples; ++s) n += length(step, first + s);
  return n;
}

template <class T>
Batch<T> TranslationDataset<T>::allocate(std::int64_t samples) const {
  Batch<T> b;
  b.samples = samples;
  b.tokens = IndexView1("act/batch.tokens", samples * max_len_);
  b.dec_tokens = IndexView1("act/batch.dec_tokens", samples * max_len_);
  b.targets = IndexView1("act/batch.targets", samples * max_len_);
  b.lengths = IndexView1("act/batch.lengths", samples);
  return b;
}

template <class T>
void TranslationDataset<T>::fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const {
  const CounterRng words(seed_, "data.nmt.words", step);
  auto hx = Kokkos::create_mirror_view(batch.tokens);
  auto hd = Kokkos::create_mirror_view(batch.dec_tokens);
  auto hy = Kokkos::create_mirror_view(batch.targets);
  auto hl = Kokkos::create_mirror_view(batch.lengths);
  const std::int64_t S = max_len_;
  for (std::int64_t s = 0; s < batch.samples; ++s) {
    const std::int64_t g = first + s, L = length(step, g);
    hl(s) = int(L);
    for (std::int64_t t = 0; t < S; ++t)
      hx(s * S + t) = t < L ? int(2 + words.below(std::uint64_t(g * S + t), std::uint64_t(vocab_ - 2))) : 0;
    for (std::int64_t t = 0; t < S; ++t) {
      hy(s * S + t) = t < L ? 2 + map_[std::size_t(hx(s * S + (L - 1 - t)) - 2)] : -1;
      hd(s * S + t) = t == 0 ? 1 : (t < L ? hy(s * S + t - 1) : 0);
    }
  }
  Kokkos::deep_copy(batch.tokens, hx);
  Kokkos::deep_copy(batch.dec_tokens, hd);
  Kokkos::deep_copy(batch.targets, hy);
  Kokkos::deep_copy(batch.lengths, hl);
}

template class TeacherDataset<float>;
template class TeacherDataset<double>;
template class MarkovDataset<float>;
template class MarkovDataset<double>;
template class TranslationDataset<float>;
template class TranslationDataset<double>;
template class TeacherDataset<bf16>;
template class TeacherDataset<fp16>;
template class MarkovDataset<bf16>;
template class MarkovDataset<fp16>;
template class TranslationDataset<bf16>;
template class TranslationDataset<fp16>;

template <class T>
ClickDataset<T>::ClickDataset(std::uint64_t seed, std::int64_t tables, std::int64_t rows, std::int64_t bag,
                              std::int64_t dense)
    : seed_(seed), tables_(tables), rows_(rows), bag_(bag), dense_(dense) {}

template <class T>
Batch<T> ClickDataset<T>::allocate(std::int64_t samples) const {
  Batch<T> b;
  b.samples = samples;
  b.tokens = IndexView1("act/batch.tokens", samples * tables_ * bag_);
  b.features = View2<T>("act/batch.features", samples, dense_);
  b.targets = IndexView1("act/batch.targets", samples);
  return b;
}

template <class T>
double ClickDataset<T>::expected_distinct(std::int64_t rows, std::int64_t draws) {
  // id k <=> rows^u in [k + 1, k + 2): P(k) = ln((k + 2)/(k + 1)) / ln(rows) for k < rows − 1; the clamp puts what is
  // left (u so close to 1 that ⌊rows^u⌋ = rows) on the last row
  if (rows <= 1) return 1.0;
  const double L = std::log(double(rows));
  double e = 0, left = 1;
  for (std::int64_t k = 0; k + 1 < rows; ++k) {
    const double pk = std::log1p(1.0 / double(k + 1)) / L;
    left -= pk;
    e += -std::expm1(double(draws) * std::log1p(-std::min(pk, 1.0 - 1e-16)));
  }
  if (left > 0) e += -std::expm1(double(draws) * std::log1p(-left));
  return e;
}

template <class T>
void ClickDataset<T>::fill(std::uint64_t step, std::int64_t first, Batch<T>& batch) const {
  const CounterRng ri(seed_, "data.click.ids", step), rx(seed_, "data.click.x", step);
  const CounterRng rh(seed_, "data.click.h"), rw(seed_, "data.click.w");
  auto ht = Kokkos::create_mirror_view(batch.tokens);
  auto hx = Kokkos::create_mirror_view(batch.features);
  auto hy = Kokkos::create_mirror_view(batch.targets);
  const double log_rows = std::log(double(rows_));
  for (std::int64_t s = 0; s < batch.samples; ++s) {
    const std::uint64_t g = std::uint64_t(first + s);
    double score = 0;
    for (std::int64_t f = 0; f < tables_; ++f)
      for (std::int64_t b = 0; b < bag_; ++b) {
        const std::int64_t k = (s * tables_ + f) * bag_ + b;
        const double u = ri.uniform((g * std::uint64_t(tables_) + std::uint64_t(f)) * std::uint64_t(bag_) + std::uint64_t(b));
        const std::int64_t id = std::min<std::int64_t>(rows_ - 1, std::max<std::int64_t>(0, std::int64_t(std::exp(u * log_rows)) - 1));
        ht(k) = int(id);
        score += rh.normal(std::uint64_t(f * rows_ + id));
      }
    for (std::int64_t j = 0; j < dense_; ++j) {
      const double x = rx.normal(g * std::uint64_t(dense_) + std::uint64_t(j));
      hx(s, j) = T(x);
      score += rw.normal(std::uint64_t(j)) / std::sqrt(double(dense_)) * x;
    }
    hy(s) = score > 0 ? 1 : 0;
  }
  Kokkos::deep_copy(batch.tokens, ht);
  Kokkos::deep_copy(batch.features, hx);
  Kokkos::deep_copy(batch.targets, hy);
}

template class ClickDataset<float>;
template class ClickDataset<double>;
template class ClickDataset<bf16>;
template class ClickDataset<fp16>;

}  // namespace partrain::models
