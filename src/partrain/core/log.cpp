#include "partrain/core/log.hpp"

#include <cstdio>

#include "partrain/core/error.hpp"

namespace partrain {

void log0(const std::string& line) {
  if (world_rank_or_minus_one() > 0) return;
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

void log_all(const std::string& line) {
  std::fprintf(stderr, "[rank %d] %s\n", world_rank_or_minus_one(), line.c_str());
  std::fflush(stderr);
}

std::string ProgressLine::format(int step, double loss, double step_time_s, double throughput,
                                 const std::string& extra) {
  elapsed_s_ += step_time_s;
  ++done_;
  const double eta = done_ > 0 ? elapsed_s_ / done_ * (total_ - step) : 0.0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "step %4d/%d | loss %.6f | %9.2f ms | %10.1f %s/s | ETA %6.1f s", step, total_,
                loss, step_time_s * 1e3, throughput, unit_.c_str(), eta < 0 ? 0.0 : eta);
  std::string s = buf;
  if (!extra.empty()) s += " | " + extra;
  return s;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

}  // namespace partrain
