#include "partrain/parallel/zero/estimator.hpp"

#include <algorithm>

namespace partrain::parallel::zero {

MemoryEstimate estimate(const EstimateInput& in) {
  const bool mixed = in.precision == "mixed";
  const double psi = in.psi, nd = double(in.nd);
  const double pe = mixed ? 2.0 : 4.0;  // bytes of a parameter or gradient element
  // K: optimizer bytes per parameter. fp32: Adam's m and v (8), SGD's momentum (4) or nothing, AdaGrad's accumulator
  // (4); mixed precision adds the fp32 master copy (the paper's K = 12 for Adam).
  double K = in.optimizer == "sgd" ? (in.momentum > 0 ? 4.0 : 0.0) : in.optimizer == "adagrad" ? 4.0 : 8.0;
  if (mixed) K += 4.0;
  MemoryEstimate m;
  m.params = in.stage >= 3 ? pe * psi / nd : pe * psi;
  m.grads = in.stage >= 2 ? pe * psi / nd : pe * psi;
  m.optimizer = in.stage >= 1 ? K * psi / nd : K * psi;
  if (in.offload == "file") {  // the state leaves memory for the staging buffer (and at stage 3 the parameters too)
    m.optimizer = 0;
    if (in.stage >= 3) m.params = 0;
    m.buffers += in.staging_bytes;
  }
  if (in.stage == 2) m.buffers += 2 * pe * std::max(in.bucket_elems, in.largest_unit);  // one filling, one reducing
  if (in.stage >= 3)  // the layer running and the next one gathered; its gradients accumulating and reducing
    m.buffers += (in.prefetch ? 2.0 : 1.0) * pe * in.largest_unit + 2 * pe * in.largest_unit;
  m.activations = in.activation_bytes;
  return m;
}

}  // namespace partrain::parallel::zero
