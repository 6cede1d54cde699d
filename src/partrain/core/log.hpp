// Rank-0 logging and the per-step progress line ("step 3/20 | loss 5.1234 | 12.3 ms | 8300 tok/s | ETA 0.2 s").
#pragma once

#include <string>

namespace partrain {

/// Prints a line on rank 0 only (stdout, flushed).
void log0(const std::string& line);
/// Prints a line on every rank, prefixed with "[rank r] " (stderr, flushed).
void log_all(const std::string& line);

/// Formats the progress line for one step. `throughput` is in `unit`/s (samples or tokens); `extra` is appended.
class ProgressLine {
 public:
  ProgressLine(int total_steps, std::string unit) : total_(total_steps), unit_(std::move(unit)) {}
  std::string format(int step, double loss, double step_time_s, double throughput, const std::string& extra = "");

 private:
  int total_;
  std::string unit_;
  double elapsed_s_ = 0;
  int done_ = 0;
};

/// "1.23 GB", "512 KiB": bytes in binary units.
std::string format_bytes(double bytes);

}  // namespace partrain
