// The two 16-bit floating-point storage types of mixed precision, on the host and on the device:
//   bf16  (bfloat16)  1 sign, 8 exponent, 7 mantissa bits: fp32's range, unit roundoff u = 2^-8
//   fp16  (IEEE half) 1 sign, 5 exponent, 10 mantissa bits: max 65504, smallest subnormal 2^-24, u = 2^-11
// They are storage, not arithmetic: a value converts to float implicitly and every kernel computes in
// acc_t<T> (float for both), storing back with one rounding (round to nearest, ties to even; NaN stays NaN, values
// beyond fp16's range become ±inf as IEEE conversion does). No operator +, += … is defined on purpose: a kernel that
// would accumulate in 16 bits does not compile.
//
// Own types rather than Kokkos's: Kokkos 3.x makes half_t a float on host backends and has no bhalf_t, and the
// suite builds against Kokkos 3.4 (Debian) and 4.x (CUDA) alike. The conversions are bit manipulation (no
// intrinsics), the same on the host and in CUDA device code, so a value rounds identically everywhere.
#pragma once

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace partrain {

namespace half_detail {
KOKKOS_INLINE_FUNCTION std::uint32_t bits_of(float f) {
  std::uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
KOKKOS_INLINE_FUNCTION float float_of(std::uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace half_detail

struct bf16 {
  std::uint16_t bits;

  bf16() = default;
  KOKKOS_INLINE_FUNCTION bf16(float f) : bits(from_float(f)) {}  // NOLINT: implicit, as a narrowing store
  KOKKOS_INLINE_FUNCTION operator float() const { return half_detail::float_of(std::uint32_t(bits) << 16); }

  KOKKOS_INLINE_FUNCTION static std::uint16_t from_float(float f) {
    std::uint32_t u = half_detail::bits_of(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t(((u >> 16) & 0x8000u) | 0x7fc0u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (overflow carries into inf, as it should)
    return std::uint16_t(u >> 16);
  }
  KOKKOS_INLINE_FUNCTION static bf16 from_bits(std::uint16_t b) {
    bf16 h;
    h.bits = b;
    return h;
  }
};

struct fp16 {
  std::uint16_t bits;

  fp16() = default;
  KOKKOS_INLINE_FUNCTION fp16(float f) : bits(from_float(f)) {}  // NOLINT: implicit, as a narrowing store
  KOKKOS_INLINE_FUNCTION operator float() const { return to_float(bits); }

  KOKKOS_INLINE_FUNCTION static std::uint16_t from_float(float f) {
    using half_detail::bits_of;
    using half_detail::float_of;
    const std::uint32_t u = bits_of(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    std::uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return std::uint16_t(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));  // NaN, inf
    if (a >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // >= 65520 rounds past 65504: inf
    if (a < 0x38800000u) {  // below 2^-14: an fp16 subnormal (or zero); adding 0.5 lets the FPU round at 2^-24
      const float r = float_of(a) + 0.5f;
      return std::uint16_t(sign | (bits_of(r) - 0x3f000000u));
    }
    a += 0xc8000fffu + ((a >> 13) & 1u);  // rebias the exponent (127 → 15) and round to nearest even
    return std::uint16_t(sign | (a >> 13));
  }
  KOKKOS_INLINE_FUNCTION static float to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {  // zero or subnormal: m·2^-24, exact in float
      const float v = float(m) * 5.9604644775390625e-08f;
      return half_detail::float_of(half_detail::bits_of(v) | sign);
    }
    if (e == 31) return half_detail::float_of(sign | 0x7f800000u | (m << 13));
    return half_detail::float_of(sign | ((e + 112u) << 23) | (m << 13));
  }
  KOKKOS_INLINE_FUNCTION static fp16 from_bits(std::uint16_t b) {
    fp16 h;
    h.bits = b;
    return h;
  }
};

static_assert(sizeof(bf16) == 2 && sizeof(fp16) == 2, "16-bit storage types");
static_assert(std::is_trivially_copyable<bf16>::value && std::is_trivially_copyable<fp16>::value, "raw buffers");

template <class T>
struct is_half : std::false_type {};
template <>
struct is_half<bf16> : std::true_type {};
template <>
struct is_half<fp16> : std::true_type {};
template <class T>
constexpr bool is_half_v = is_half<T>::value;

/// The type a kernel computes and accumulates in for storage type T: float for the 16-bit types and float, double for
/// double. Master weights and optimizer state are kept in it too (master_t).
template <class T>
using acc_t = std::conditional_t<is_half_v<T>, float, T>;
template <class T>
using master_t = acc_t<T>;

/// Unit roundoff of a storage type (half the distance from 1 to the next value): 2^-8 bf16, 2^-11 fp16, 2^-24 fp32.
template <class T>
constexpr double unit_roundoff() {
  if constexpr (std::is_same_v<T, bf16>) return 1.0 / 256;
  else if constexpr (std::is_same_v<T, fp16>) return 1.0 / 2048;
  else if constexpr (std::is_same_v<T, float>) return 1.0 / 16777216;
  else return 1.1102230246251565e-16;
}

/// The deck's name of a storage type: "fp32", "fp64", "bf16", "fp16".
template <class T>
std::string precision_name() {
  if constexpr (std::is_same_v<T, bf16>) return "bf16";
  else if constexpr (std::is_same_v<T, fp16>) return "fp16";
  else if constexpr (std::is_same_v<T, float>) return "fp32";
  else return "fp64";
}

}  // namespace partrain
