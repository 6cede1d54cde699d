// Memory tracker: live and peak bytes per category, for every Kokkos allocation the process makes.
//
// Every allocation carries a label whose prefix names its category: "params/…", "grads/…", "optim/…", "act/…",
// "comm/…" (anything else counts as "other"). The tracker hooks Kokkos Tools' allocate/deallocate callbacks, so
// a View is counted by being created — nobody has to remember to report it. Peak RSS comes from the kernel
// (VmHWM), and covers everything else (MPI, BLAS, host vectors).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace partrain {

enum class MemCategory { Params = 0, Grads, Optimizer, Activations, CommBuffers, Other, Count };
constexpr int kMemCategories = static_cast<int>(MemCategory::Count);

/// Category of a label by its prefix.
MemCategory category_of(const char* label);
/// Result-file name of a category: params, grads, optimizer, activations, comm_buffers, other.
const char* category_name(MemCategory c);

struct MemorySnapshot {
  std::array<std::int64_t, kMemCategories> live{};  ///< bytes allocated now
  std::array<std::int64_t, kMemCategories> peak{};  ///< high-water mark of each category since reset
  std::int64_t total_live = 0, total_peak = 0;
};

/// Installs the Kokkos Tools callbacks; call once after Kokkos::initialize. Idempotent.
void memory_tracker_install();
/// Counts memory the library allocated outside Kokkos (e.g. a shared MPI window) under `label`'s category;
/// memory_untrack_external when it is freed.
void memory_track_external(const char* label, const void* ptr, std::int64_t bytes);
void memory_untrack_external(const void* ptr);
/// Current figures.
MemorySnapshot memory_snapshot();
/// Resets the peaks to the live figures (e.g. after set-up, to measure the steady state).
void memory_reset_peaks();
/// Peak resident set size of this process in bytes (VmHWM), or -1 where unknown.
std::int64_t peak_rss_bytes();
/// Current resident set size in bytes (VmRSS), or -1.
std::int64_t current_rss_bytes();

}  // namespace partrain
