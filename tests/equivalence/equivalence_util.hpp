// Shared pieces of the equivalence tests: small reference models, the single-process reference run computed on
// every rank, and DESIGN.md's tolerances (fp32: loss ≤ 1e-5 relative and per-tensor gradient ≤ 1e-4 after one
// step; loss trajectories over 20 steps within 1e-4).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "partrain/collectives/process_grid.hpp"
#include "partrain/models/trainer.hpp"

namespace partrain::test {

constexpr double kLossTol = 1e-5, kGradTol = 1e-4, kTrajectoryTol = 1e-4;

inline models::ModelSpec small_gpt() {
  models::ModelSpec s;
  s.kind = "gpt";
  s.gpt = models::GptConfig{32, 8, 2, 16, 2};
  return s;
}

inline models::ModelSpec small_mlp() {
  models::ModelSpec s;
  s.kind = "mlp";
  s.mlp.widths = {16, 32, 32, 8};
  return s;
}

inline models::TrainSpec small_train(std::int64_t steps) {
  models::TrainSpec t;
  t.global_batch = 12;  // divisible by 1, 2, 3 and 4 ranks
  t.steps = steps;
  t.warmup = 0;
  t.optimizer.lr = 3e-3;
  return t;
}

struct Trajectory {
  std::vector<double> loss;
  std::vector<double> first_grads;  ///< flat gradient buffer after the first backward (before its update)
  std::map<std::string, std::vector<double>> grads_by_name;  ///< the same, per parameter
  std::map<std::string, std::vector<std::int64_t>> shapes;
};

/// The single-process reference on the whole global batch (T: a 16-bit type runs mixed precision; its gradients are
/// kept divided by the loss scale, as the optimizer applies them).
template <class T = float>
inline Trajectory reference_run(const models::ModelSpec& ms, const models::TrainSpec& ts) {
  auto m = models::make_model<T>(ms);
  auto d = models::make_dataset<T>(ms);
  models::ReferenceTrainer<T> tr(*m, *d, ts, ms.seed);
  Trajectory t;
  for (std::int64_t s = 0; s < ts.steps; ++s) {
    auto rec = tr.step(s, [&](const models::Batch<T>&, double) {
      if (s == 0) {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m->params().grads());
        t.first_grads.assign(h.data(), h.data() + h.size());
        for (auto& g : t.first_grads) g /= tr.mixed().loss_scale();
        for (const auto& p : m->params().infos()) {
          t.grads_by_name[p.name].assign(t.first_grads.begin() + p.offset, t.first_grads.begin() + p.offset + p.size);
          t.shapes[p.name] = p.shape;
        }
      }
    });
    t.loss.push_back(rec.loss);
  }
  return t;
}

/// The reference in H (a 16-bit type: mixed precision), run once per model, precision, step count and batch for the
/// binary.
template <class H>
const Trajectory& reference_in(const models::ModelSpec& ms, models::TrainSpec ts) {
  ts.precision = precision_name<H>();
  static auto& cache = *new std::map<std::string, Trajectory>;
  const std::string key = models::describe(ms) + " " + ts.precision + " " + std::to_string(ts.steps) + " " +
                          std::to_string(ts.global_batch) + " moe " + std::to_string(ms.gpt.moe.capacity_factor) + " " +
                          std::to_string(ms.gpt.moe.aux_loss_coef);  // (describe names the architecture only)
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, reference_run<H>(ms, ts)).first;
  return it->second;
}

/// One process grid per shape, and one world communicator, for every test of the binary: making one is a dozen
/// blocking MPI calls (duplicates, splits), 0.2 s each time at 4 ranks on 2 cores and more across the virtual
/// cluster's nodes — most of the tests' time when every check made its own. Never destroyed: they hold Kokkos
/// buffers, which must not be freed after Kokkos::finalize at the binary's exit.
inline coll::ProcessGrid& grid_of(GridShape shape) {
  static auto& grids = *new std::map<std::tuple<int, int, int, int>, std::unique_ptr<coll::ProcessGrid>>;
  auto& g = grids[{shape.pp, shape.dp, shape.tp, shape.cp}];
  if (!g) g = std::make_unique<coll::ProcessGrid>(MPI_COMM_WORLD, shape);
  return *g;
}
inline coll::MpiCommunicator& world_comm() {
  static auto& c = *new coll::MpiCommunicator(MPI_COMM_WORLD);
  return c;
}

inline double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); }

/// ‖a − b‖ / ‖b‖ of one tensor's values.
inline double tensor_rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

/// Per-tensor ‖g − g_ref‖ / ‖g_ref‖ for every parameter of `model`.
template <class M>
void expect_grads_close(const M& model, const std::vector<double>& got, const std::vector<double>& ref,
                        double tol, const std::string& what) {
  for (const auto& p : model.params().infos()) {
    double num = 0, den = 0;
    for (std::int64_t i = p.offset; i < p.offset + p.size; ++i) {
      num += (got[i] - ref[i]) * (got[i] - ref[i]);
      den += ref[i] * ref[i];
    }
    const double e = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
    EXPECT_LE(e, tol) << what << ": " << p.name;
  }
}

}  // namespace partrain::test
