#include "partrain/core/memory.hpp"

#include <Kokkos_Core.hpp>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace partrain {
namespace {

struct TrackerState {
  std::mutex mutex;
  MemorySnapshot snap;
  std::unordered_map<const void*, std::pair<MemCategory, std::int64_t>> live_allocs;
  bool installed = false;
};

TrackerState& state() {
  static TrackerState s;  // the callbacks are plain C functions: the tracker's state must be process-wide
  return s;
}

void on_allocate(const Kokkos::Tools::SpaceHandle, const char* label, const void* ptr, const std::uint64_t size) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  const MemCategory c = category_of(label);
  const int i = static_cast<int>(c);
  s.live_allocs[ptr] = {c, static_cast<std::int64_t>(size)};
  s.snap.live[i] += static_cast<std::int64_t>(size);
  s.snap.total_live += static_cast<std::int64_t>(size);
  if (s.snap.live[i] > s.snap.peak[i]) s.snap.peak[i] = s.snap.live[i];
  if (s.snap.total_live > s.snap.total_peak) s.snap.total_peak = s.snap.total_live;
}

void on_deallocate(const Kokkos::Tools::SpaceHandle, const char*, const void* ptr, const std::uint64_t) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.live_allocs.find(ptr);
  if (it == s.live_allocs.end()) return;  // allocated before the tracker was installed
  const int i = static_cast<int>(it->second.first);
  s.snap.live[i] -= it->second.second;
  s.snap.total_live -= it->second.second;
  s.live_allocs.erase(it);
}

std::int64_t status_field_bytes(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  std::int64_t kib = -1;
  const size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      long long v = 0;
      if (std::sscanf(line + n + 1, "%lld", &v) == 1) kib = v;
      break;
    }
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

}  // namespace

MemCategory category_of(const char* label) {
  struct Prefix {
    const char* text;
    MemCategory cat;
  };
  static const Prefix prefixes[] = {{"params/", MemCategory::Params},      {"grads/", MemCategory::Grads},
                                    {"optim/", MemCategory::Optimizer},    {"act/", MemCategory::Activations},
                                    {"comm/", MemCategory::CommBuffers}};
  if (label)
    for (const auto& p : prefixes)
      if (std::strncmp(label, p.text, std::strlen(p.text)) == 0) return p.cat;
  return MemCategory::Other;
}

const char* category_name(MemCategory c) {
  static const char* names[] = {"params", "grads", "optimizer", "activations", "comm_buffers", "other"};
  return names[static_cast<int>(c)];
}

void memory_tracker_install() {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.installed) return;
  Kokkos::Tools::Experimental::set_allocate_data_callback(on_allocate);
  Kokkos::Tools::Experimental::set_deallocate_data_callback(on_deallocate);
  s.installed = true;
}

void memory_track_external(const char* label, const void* ptr, std::int64_t bytes) {
  on_allocate(Kokkos::Tools::SpaceHandle{}, label, ptr, std::uint64_t(bytes));
}

void memory_untrack_external(const void* ptr) { on_deallocate(Kokkos::Tools::SpaceHandle{}, "", ptr, 0); }

MemorySnapshot memory_snapshot() {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.snap;
}

void memory_reset_peaks() {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.snap.peak = s.snap.live;
  s.snap.total_peak = s.snap.total_live;
}

std::int64_t peak_rss_bytes() { return status_field_bytes("VmHWM"); }
std::int64_t current_rss_bytes() { return status_field_bytes("VmRSS"); }

}  // namespace partrain
