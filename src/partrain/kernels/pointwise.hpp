// Launching elementwise work so that it vectorises on CPUs and stays coalesced on GPUs.
//
// A Kokkos RangePolicy lambda indexing Views element by element does not vectorise on the host backends: the
// stores may alias the functor's own copy of the View handles, so the compiler reloads the data pointers on every
// iteration (seen in the GELU kernels: scalar code, a quarter of a GPT step). pointwise() hands each work item a
// chunk [i0, i1) that it walks with raw pointers held in registers: chunks of kHostChunk elements where the
// execution space runs on the host, single elements on a GPU (where one thread per element is what coalesces).
#pragma once

#include "partrain/core/types.hpp"

namespace partrain::kernels {

constexpr std::int64_t kHostChunk = 4096;

/// `Exec`: the execution space (the default one, or the host's for data kept in host memory).
template <class Exec = ExecSpace, class F>
void pointwise(const char* label, std::int64_t n, F body) {
  constexpr bool host = Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename Exec::memory_space>::accessible;
  const std::int64_t chunk = host ? kHostChunk : 1;
  const std::int64_t items = (n + chunk - 1) / chunk;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<Exec>(0, items), KOKKOS_LAMBDA(std::int64_t item) {
        const std::int64_t i0 = item * chunk;
        const std::int64_t i1 = i0 + chunk < n ? i0 + chunk : n;
        body(i0, i1);
      });
}

}  // namespace partrain::kernels
