#include "partrain/perf/profile.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "partrain/core/error.hpp"

namespace partrain::perf {

double MachineProfile::gemm_rate(double m, double n, double k, bool half) const {
  if (half && has_half()) {
    const double side = std::cbrt(std::max(1.0, m * n * k));
    return side <= 192 ? gemm_half_small : side <= 768 ? gemm_half_medium : gemm_half_large;
  }
  if (gemm_thin > 0 && std::min({m, n, k}) <= 32) return gemm_thin;
  const double side = std::cbrt(std::max(1.0, m * n * k));
  if (side <= 96 && gemm_tiny > 0) return gemm_tiny;
  return side <= 192 ? gemm_small : side <= 768 ? gemm_medium : gemm_large;
}

const CollectiveFit* MachineProfile::find(const std::string& algo, const std::string& op, const std::string& scope,
                                          double bytes) const {
  const CollectiveFit* best = nullptr;
  double best_distance = 0;
  for (const auto& c : collectives) {
    if (c.algo != algo || c.op != op || c.scope != scope) continue;
    if (bytes < 0) return &c;
    // how far the size lies outside the range, in factors of two (0: inside)
    const double below = c.min_bytes > 0 && bytes < c.min_bytes ? std::log2(c.min_bytes / std::max(1.0, bytes)) : 0;
    const double above = c.max_bytes > 0 && bytes >= c.max_bytes ? std::log2(std::max(1.0, bytes) / c.max_bytes) + 1e-9 : 0;
    const double distance = below + above;
    if (!best || distance < best_distance) {
      best = &c;
      best_distance = distance;
    }
  }
  return best;
}

namespace {

double positive(const std::string& key, const std::string& path, const toml::table& t, const std::string& name,
                bool required = true) {
  const auto* n = t.get(name);
  if (!n) {
    if (required) input_error(key, path, name + " is missing");
    return 0;
  }
  const auto v = n->value<double>();
  if (!v || !(*v >= 0) || !std::isfinite(*v)) input_error(key, path, name + " must be a number >= 0");
  return *v;
}

std::string text(const toml::table& t, const std::string& name) {
  const auto v = t[name].value<std::string>();
  return v ? *v : "";
}

std::string num(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

}  // namespace

MachineProfile read_profile(const std::string& key, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const std::string what(e.description());
    if (what.find("File could not be opened") != std::string::npos) input_error(key, path, "cannot read the profile");
    input_error(key, path, "TOML syntax error at line " + std::to_string(e.source().begin.line) + ": " + what);
  }
  MachineProfile p;
  p.name = text(root, "name");
  p.source = text(root, "source");
  if (root.get("ranks_per_node")) p.ranks_per_node = int(positive(key, path, root, "ranks_per_node"));
  if (root.get("cores_per_node")) p.cores_per_node = int(positive(key, path, root, "cores_per_node"));
  const auto* c = root["compute"].as_table();
  if (!c) input_error(key, path, "[compute] is missing");
  p.gemm_tiny = positive(key, path, *c, "gemm_tiny", false);
  p.gemm_thin = positive(key, path, *c, "gemm_thin", false);
  p.thin_s_per_B = positive(key, path, *c, "thin_s_per_B", false);
  p.gemm_small = positive(key, path, *c, "gemm_small");
  p.gemm_medium = positive(key, path, *c, "gemm_medium");
  p.gemm_large = positive(key, path, *c, "gemm_large");
  p.gemm_half_small = positive(key, path, *c, "gemm_half_small", false);
  p.gemm_half_medium = positive(key, path, *c, "gemm_half_medium", false);
  p.gemm_half_large = positive(key, path, *c, "gemm_half_large", false);
  const int halves = (p.gemm_half_small > 0) + (p.gemm_half_medium > 0) + (p.gemm_half_large > 0);
  if (halves != 0 && halves != 3)
    input_error(key, path, "gemm_half_small, gemm_half_medium and gemm_half_large go together (all three or none)");
  p.memory_Bps = positive(key, path, *c, "memory_Bps");
  p.reduce_Bps = positive(key, path, *c, "reduce_Bps");
  p.pointwise_eps = positive(key, path, *c, "pointwise_eps", false);
  p.pointwise_half_eps = positive(key, path, *c, "pointwise_half_eps", false);
  p.adam_pps = positive(key, path, *c, "adam_pps", false);
  p.lstm_ups = positive(key, path, *c, "lstm_ups", false);
  p.lstm_forward_ups = positive(key, path, *c, "lstm_forward_ups", false);
  p.attention_fps = positive(key, path, *c, "attention_fps", false);
  p.block_attention_fps = positive(key, path, *c, "block_attention_fps", false);
  p.sgd_pps = positive(key, path, *c, "sgd_pps", false);
  p.adagrad_pps = positive(key, path, *c, "adagrad_pps", false);
  if (p.gemm_small <= 0 || p.gemm_medium <= 0 || p.gemm_large <= 0 || p.memory_Bps <= 0 || p.reduce_Bps <= 0)
    input_error(key, path, "every [compute] rate must be > 0");
  if (const auto* arr = root["collective"].as_array()) {
    for (const auto& e : *arr) {
      const auto* t = e.as_table();
      if (!t) input_error(key, path, "[[collective]] entries must be tables");
      CollectiveFit f;
      f.algo = text(*t, "algo");
      f.op = text(*t, "op");
      f.scope = text(*t, "scope");
      if (f.scope.empty()) f.scope = "intra";
      if (f.scope != "intra" && f.scope != "inter") input_error(key, path, "collective scope = \"" + f.scope + "\": must be intra or inter");
      try {
        (void)cost_terms(f.algo, f.op, 2, 1 << 20);
      } catch (const RuntimeError&) {
        input_error(key, path, "collective " + f.algo + " " + f.op + ": no such algorithm and operation");
      }
      f.ranks = int(positive(key, path, *t, "ranks", false));
      f.min_bytes = positive(key, path, *t, "min_bytes", false);
      f.max_bytes = positive(key, path, *t, "max_bytes", false);
      if (f.max_bytes > 0 && f.max_bytes <= f.min_bytes)
        input_error(key, path, "collective " + f.algo + " " + f.op + ": max_bytes must be above min_bytes");
      f.link.alpha_s = positive(key, path, *t, "alpha_s");
      f.link.beta_s_per_B = positive(key, path, *t, "beta_s_per_B");
      f.link.gamma_s_per_B = 1 / p.reduce_Bps;
      f.fit_error = positive(key, path, *t, "fit_error", false);
      p.collectives.push_back(f);
    }
  }
  return p;
}

std::string to_toml(const MachineProfile& p) {
  std::ostringstream os;
  os << "# partrain machine profile (docs/model.md)\n";
  os << "name = \"" << p.name << "\"\nsource = \"" << p.source << "\"\nranks_per_node = " << p.ranks_per_node << "\n";
  if (p.cores_per_node > 0) os << "cores_per_node = " << p.cores_per_node << "   # more ranks than this share the cores\n";
  os << "\n";
  os << "[compute]\n";
  if (p.gemm_tiny > 0) os << "gemm_tiny = " << num(p.gemm_tiny) << "     # fp32 FLOP/s of one rank, gemms of side <= 96\n";
  if (p.gemm_thin > 0) os << "gemm_thin = " << num(p.gemm_thin) << "     # any dimension <= 32 (an LSTM step's)\n";
  if (p.thin_s_per_B > 0)
    os << "thin_s_per_B = " << num(p.thin_s_per_B) << "  # a thin product's fixed part: seconds per byte of weight per call\n";
  os << "gemm_small = " << num(p.gemm_small) << "    # side <= 192\n";
  os << "gemm_medium = " << num(p.gemm_medium) << "   # side <= 768\n";
  os << "gemm_large = " << num(p.gemm_large) << "    # larger\n";
  if (p.has_half()) {
    os << "gemm_half_small = " << num(p.gemm_half_small) << "   # fp16/bf16 FLOP/s, side <= 192\n";
    os << "gemm_half_medium = " << num(p.gemm_half_medium) << "  # side <= 768\n";
    os << "gemm_half_large = " << num(p.gemm_half_large) << "   # larger\n";
  }
  os << "memory_Bps = " << num(p.memory_Bps) << "    # one rank's streaming rate, bytes read + written, every rank at once\n";
  os << "reduce_Bps = " << num(p.reduce_Bps) << "    # one rank's a += b rate per byte of b (gamma = 1 / reduce_Bps)\n";
  if (p.pointwise_eps > 0) os << "pointwise_eps = " << num(p.pointwise_eps) << " # elements/s of GELU forward (fp32)\n";
  if (p.pointwise_half_eps > 0)
    os << "pointwise_half_eps = " << num(p.pointwise_half_eps) << " # elements/s of GELU forward on bf16\n";
  if (p.adam_pps > 0) os << "adam_pps = " << num(p.adam_pps) << "      # parameters/s of the AdamW step\n";
  if (p.sgd_pps > 0) os << "sgd_pps = " << num(p.sgd_pps) << "       # parameters/s of the SGD step\n";
  if (p.adagrad_pps > 0) os << "adagrad_pps = " << num(p.adagrad_pps) << "   # parameters/s of the AdaGrad step\n";
  if (p.lstm_ups > 0) os << "lstm_ups = " << num(p.lstm_ups) << "      # LSTM cell units/s, pointwise, forward + backward\n";
  if (p.lstm_forward_ups > 0) os << "lstm_forward_ups = " << num(p.lstm_forward_ups) << "  # the same, forward alone\n";
  if (p.attention_fps > 0)
    os << "attention_fps = " << num(p.attention_fps) << "  # FLOP/s of causal attention forward + backward (T = 512, d = 64)\n";
  if (p.block_attention_fps > 0)
    os << "block_attention_fps = " << num(p.block_attention_fps) << "  # the same of ring attention's blocks (c = 256, d = 64)\n";
  for (const auto& c : p.collectives) {
    os << "\n[[collective]]\nalgo = \"" << c.algo << "\"\nop = \"" << c.op << "\"\nscope = \"" << c.scope << "\"\n";
    if (c.ranks > 0) os << "ranks = " << c.ranks << "\n";
    if (c.min_bytes > 0) os << "min_bytes = " << std::int64_t(c.min_bytes) << "   # the sizes this fit holds for: [min, max)\n";
    if (c.max_bytes > 0) os << "max_bytes = " << std::int64_t(c.max_bytes) << "\n";
    os << "alpha_s = " << num(c.link.alpha_s) << "\nbeta_s_per_B = " << num(c.link.beta_s_per_B) << "\n";
    if (c.ranks > 0) os << "fit_error = " << num(c.fit_error) << "   # median relative error over the measured sizes\n";
  }
  return os.str();
}

}  // namespace partrain::perf
