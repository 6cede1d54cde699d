// Device-callable math functions: Kokkos 3.x keeps them in Kokkos::Experimental, Kokkos ≥ 3.7 in Kokkos.
#pragma once

#include <Kokkos_Core.hpp>

namespace partrain {
#if KOKKOS_VERSION >= 30700
namespace kmath = ::Kokkos;
#else
namespace kmath = ::Kokkos::Experimental;
#endif
}  // namespace partrain
