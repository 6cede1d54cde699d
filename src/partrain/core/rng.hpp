// Counter-based random numbers keyed by (seed, tensor name, stream, global element index).
//
// Nothing depends on rank or call order, so a shard of a tensor is bit-identical to the same slice of the serial
// tensor. The algorithm is written so any framework can reproduce it with 64-bit integer arithmetic:
//   mix(z)    = splitmix64 finaliser: z ^= z>>30; z *= 0xbf58476d1ce4e5b9; z ^= z>>27; z *= 0x94d049bb133111eb; z ^= z>>31
//   key       = mix(seed + G) ^ fnv1a64(name) ^ mix(stream + 2G),   G = 0x9e3779b97f4a7c15 (all mod 2^64)
//   bits(i,s) = mix(key + (2i + s + 1)·G)                            (s = 0 or 1)
//   uniform(i)= ((bits(i,0) >> 11) + 0.5) · 2^-53                    in (0, 1), never 0 or 1
//   normal(i) = sqrt(-2 ln u0) · cos(2π u1),  u0, u1 from bits(i,0), bits(i,1)  (Box-Muller, computed in double)
#pragma once

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <string>

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"

namespace partrain {

KOKKOS_INLINE_FUNCTION std::uint64_t rng_mix(std::uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z;
}

inline std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// A stream of random numbers addressed by index: value(i) depends on (key, i) only.
struct CounterRng {
  static constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
  std::uint64_t key = 0;

  CounterRng() = default;
  CounterRng(std::uint64_t seed, const std::string& name, std::uint64_t stream = 0)
      : key(rng_mix(seed + kGolden) ^ fnv1a64(name) ^ rng_mix(stream + 2 * kGolden)) {}

  KOKKOS_INLINE_FUNCTION std::uint64_t bits(std::uint64_t i, std::uint64_t s = 0) const {
    return rng_mix(key + (2 * i + s + 1) * kGolden);
  }
  /// Uniform in (0, 1).
  KOKKOS_INLINE_FUNCTION double uniform(std::uint64_t i, std::uint64_t s = 0) const {
    return (double(bits(i, s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  /// Standard normal.
  KOKKOS_INLINE_FUNCTION double normal(std::uint64_t i) const {
    const double u0 = uniform(i, 0), u1 = uniform(i, 1);
    return kmath::sqrt(-2.0 * kmath::log(u0)) *
           kmath::cos(6.283185307179586 * u1);
  }
  /// Integer in [0, n).
  KOKKOS_INLINE_FUNCTION std::uint64_t below(std::uint64_t i, std::uint64_t n) const { return bits(i, 0) % n; }
};

/// Fills x[j] = mean + std · normal(offset + j): `offset` is the global index of x's first element, so a shard
/// filled with its offset equals the same slice of the whole tensor.
template <class T>
void fill_normal(const View1<T>& x, const CounterRng& rng, double mean, double std, std::uint64_t offset = 0) {
  Kokkos::parallel_for(
      "partrain::rng::fill_normal", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)),
      KOKKOS_LAMBDA(const std::int64_t j) { x(j) = T(mean + std * rng.normal(offset + std::uint64_t(j))); });
}

template <class T>
void fill_constant(const View1<T>& x, T value) {
  Kokkos::deep_copy(x, value);
}

}  // namespace partrain
