// Vectorisable exp and tanh for float, for the pointwise kernels (GELU): the C library's expf/tanhf are scalar
// calls that the compiler cannot vectorise without -ffast-math, and they dominated the GELU kernels (a quarter of
// a GPT step in a profile). Double precision keeps the library functions (gradient checks run in double).
//   exp(x) = 2ⁿ · e^r,  n = round(x·log₂e),  r = x − n·ln2 (Cody–Waite split of ln2),  e^r by its Taylor series
//            to r⁷ (|r| ≤ ln2/2: truncation < 6e-9 relative, below float's 6e-8 ulp), 2ⁿ built in the exponent bits.
//   tanh(u) = 1 − 2/(1 + e^{2u}), absolute error ~1e-7: GELU uses 1 + tanh and 1 − tanh², where absolute
//            error is what counts.
#pragma once

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <cstring>

#include "partrain/core/math.hpp"

namespace partrain {

KOKKOS_INLINE_FUNCTION float exp_vec(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = kmath::floor(x * 1.44269504088896341f + 0.5f);
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  const float p =
      1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  const std::int32_t bits = (std::int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

KOKKOS_INLINE_FUNCTION float tanh_vec(float u) { return 1.0f - 2.0f / (1.0f + exp_vec(2.0f * u)); }
KOKKOS_INLINE_FUNCTION double tanh_vec(double u) { return kmath::tanh(u); }

}  // namespace partrain
