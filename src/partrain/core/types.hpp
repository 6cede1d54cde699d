// Tensor types shared by the library: Kokkos Views, LayoutRight, in the default execution space's memory.
#pragma once

#include <Kokkos_Core.hpp>

#include <cstdint>

#include "partrain/core/half.hpp"

namespace partrain {

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;

template <class T>
using View1 = Kokkos::View<T*, Kokkos::LayoutRight, MemSpace>;
template <class T>
using View2 = Kokkos::View<T**, Kokkos::LayoutRight, MemSpace>;
template <class T>
using View3 = Kokkos::View<T***, Kokkos::LayoutRight, MemSpace>;
template <class T>
using View4 = Kokkos::View<T****, Kokkos::LayoutRight, MemSpace>;

using IndexView1 = View1<int>;  ///< token ids, class labels
using IndexView2 = View2<int>;  ///< [B, T] tokens

/// A 2D view over contiguous memory (rows × cols), unmanaged: used to reinterpret buffers.
template <class T>
View2<T> as_matrix(T* data, std::int64_t rows, std::int64_t cols) {
  return View2<T>(data, rows, cols);
}

}  // namespace partrain
