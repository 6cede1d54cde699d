#include "sweep.hpp"

#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "partrain/core/error.hpp"

namespace partrain::sweep {
namespace {

std::string node_text(const toml::node& n) {
  std::ostringstream os;
  if (auto s = n.as_string()) return "\"" + s->get() + "\"";
  if (n.is_table()) return "{...}";  // one line: a table's TOML spans several
  n.visit([&](auto&& x) { os << x; });
  return os.str();
}

[[noreturn]] void bad(const std::string& file, const std::string& key, const std::string& value,
                      const std::string& why) {
  input_error(file + ": " + key, value, why);
}

std::string get_string(const std::string& file, const toml::table& t, const std::string& key, bool required,
                       const std::string& def = "") {
  auto n = t.get(key);
  if (!n) {
    if (required) bad(file, key, "(missing)", "required");
    return def;
  }
  if (!n->is_string()) bad(file, key, node_text(*n), "must be a string");
  return n->as_string()->get();
}

int get_int(const std::string& file, const toml::table& t, const std::string& key, int def, int min) {
  auto n = t.get(key);
  if (!n) return def;
  if (!n->is_integer()) bad(file, key, node_text(*n), "must be an integer");
  const auto v = n->as_integer()->get();
  if (v < min || v > 1 << 24) bad(file, key, node_text(*n), "must be >= " + std::to_string(min));
  return int(v);
}

std::vector<std::string> get_strings(const std::string& file, const toml::table& t, const std::string& key) {
  std::vector<std::string> out;
  auto n = t.get(key);
  if (!n) return out;
  auto arr = n->as_array();
  if (!arr) bad(file, key, node_text(*n), "must be a list of strings");
  for (auto&& e : *arr) {
    if (!e.is_string()) bad(file, key, node_text(*n), "must be a list of strings");
    out.push_back(e.as_string()->get());
  }
  return out;
}

void only_keys(const std::string& file, const toml::table& t, const std::string& prefix,
               const std::set<std::string>& allowed) {
  for (auto&& [k, v] : t)
    if (!allowed.count(std::string(k.str())))
      bad(file, prefix + std::string(k.str()), node_text(v), "unknown key");
}

SiteOptions site(const std::string& file, const toml::table& root, const std::string& name) {
  SiteOptions o;
  auto n = root.get(name);
  if (!n) return o;
  auto t = n->as_table();
  if (!t) bad(file, name, node_text(*n), "must be a table");
  only_keys(file, *t, name + ".", {"partition", "queue", "account", "launcher", "directives"});
  o.partition = get_string(file, *t, "partition", false);
  o.queue = get_string(file, *t, "queue", false);
  o.account = get_string(file, *t, "account", false);
  o.launcher = get_string(file, *t, "launcher", false, "mpiexec");
  if (o.launcher != "mpiexec" && o.launcher != "srun")
    bad(file, name + ".launcher", "\"" + o.launcher + "\"", "must be mpiexec or srun");
  o.directives = get_strings(file, *t, "directives");
  return o;
}

std::vector<std::pair<std::string, std::string>> overrides(const std::string& file, const toml::node* n,
                                                           const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!n) return out;
  auto t = n->as_table();
  if (!t) bad(file, name, node_text(*n), "must be a table of deck keys");
  for (auto&& [k, v] : *t) {
    if (v.is_table()) bad(file, name + "." + std::string(k.str()), "(table)", "use quoted dotted keys: \"train.steps\" = 10");
    out.emplace_back(std::string(k.str()), node_text(v));
  }
  return out;
}

std::string format_number(double v) {
  std::ostringstream os;
  if (v == std::floor(v) && std::abs(v) < 1e15) os << std::int64_t(v);
  else os << v;
  return os.str();
}

}  // namespace

std::vector<std::string> load_suite(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return {};  // load_sweep says what is wrong
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error&) {
    return {};  // load_sweep reports the syntax error
  }
  if (!root.contains("sweeps")) return {};
  only_keys(path, root, "", {"sweeps"});
  std::vector<std::string> out = get_strings(path, root, "sweeps");
  if (out.empty()) bad(path, "sweeps", "[]", "must list at least one sweep file");
  return out;
}

Sweep load_sweep(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) input_error("sweep file", path, "is a directory, not a sweep file");
  std::ifstream in(path);
  if (!in) input_error("sweep file", path, "cannot read it");
  toml::table root;
  try {
    root = toml::parse(in, path);
  } catch (const toml::parse_error& e) {
    input_error("sweep file", path, "TOML syntax error at line " + std::to_string(e.source().begin.line) + ": " +
                                        std::string(e.description()));
  }
  only_keys(path, root, "", {"app", "deck", "kind", "ranks", "ranks_per_node", "repetitions", "time_limit", "args",
                             "set", "weak", "points", "slurm", "pbs", "mpiexec", "requeue", "checkpoint_every", "max_requeues",
                             "threads"});
  Sweep s;
  auto slash = path.find_last_of('/');
  s.name = path.substr(slash == std::string::npos ? 0 : slash + 1);
  s.name = s.name.substr(0, s.name.rfind(".toml"));
  s.app = get_string(path, root, "app", true);
  // Any mini-app can be swept (partrain-ref, -dp, -tp, ... and those to come): a name partrain-<word> whose binary is
  // built (checked by the caller); partrain-collectives takes arguments instead of a deck.
  if (s.app.rfind("partrain-", 0) != 0 || s.app.size() == 9 ||
      s.app.find_first_not_of("abcdefghijklmnopqrstuvwxyz-", 9) != std::string::npos || s.app == "partrain-sweep" ||
      s.app == "partrain-compare")
    bad(path, "app", "\"" + s.app + "\"", "must name a partrain mini-app (partrain-ref, partrain-dp, partrain-tp, ..., "
                                         "or partrain-collectives)");
  s.deck = get_string(path, root, "deck", s.app != "partrain-collectives");
  s.mpiexec = get_string(path, root, "mpiexec", false, PARTRAIN_MPIEXEC);
  s.kind = get_string(path, root, "kind", false, "strong");
  if (s.kind != "strong" && s.kind != "weak") bad(path, "kind", "\"" + s.kind + "\"", "must be strong or weak");
  auto rn = root.get("ranks");
  if (!rn || !rn->is_array() || rn->as_array()->empty()) bad(path, "ranks", rn ? node_text(*rn) : "(missing)", "must be a non-empty list of rank counts");
  for (auto&& e : *rn->as_array()) {
    if (!e.is_integer() || e.as_integer()->get() < 1) bad(path, "ranks", node_text(*rn), "every rank count must be an integer >= 1");
    s.ranks.push_back(int(e.as_integer()->get()));
  }
  s.ranks_per_node = get_int(path, root, "ranks_per_node", 1, 1);
  s.repetitions = get_int(path, root, "repetitions", 1, 1);
  s.time_limit = get_string(path, root, "time_limit", false, "00:30:00");
  int h = 0, m = 0, sec = 0;
  char c1 = 0, c2 = 0;
  std::istringstream tl(s.time_limit);
  if (!(tl >> h >> c1 >> m >> c2 >> sec) || c1 != ':' || c2 != ':' || m > 59 || sec > 59 || h < 0)
    bad(path, "time_limit", "\"" + s.time_limit + "\"", "must be HH:MM:SS");
  s.args = get_strings(path, root, "args");
  s.set = overrides(path, root.get("set"), "set");
  for (auto& [k, v] : overrides(path, root.get("weak"), "weak")) {
    try {
      s.weak.emplace_back(k, std::stod(v));
    } catch (const std::exception&) {
      bad(path, "weak." + k, v, "must be a number (the per-rank value)");
    }
  }
  if (!s.weak.empty() && s.kind != "weak") bad(path, "weak", "(table)", "only for kind = \"weak\"");
  if (s.app == "partrain-collectives" && (!s.set.empty() || !s.weak.empty()))
    bad(path, "set", "(table)", "partrain-collectives takes no deck: use args");
  if (auto pn = root.get("points")) {
    auto pt = pn->as_table();
    if (!pt) bad(path, "points", node_text(*pn), "must be a table of rank counts");
    for (auto&& [k, v] : *pt) {
      int r = 0;
      try {
        r = std::stoi(std::string(k.str()));
      } catch (const std::exception&) {
        bad(path, "points." + std::string(k.str()), "(table)", "must be keyed by a rank count");
      }
      if (std::find(s.ranks.begin(), s.ranks.end(), r) == s.ranks.end())
        bad(path, "points." + std::string(k.str()), "(table)", "is not one of the sweep's rank counts");
      s.points[r] = overrides(path, &v, "points." + std::string(k.str()));
    }
  }
  s.slurm = site(path, root, "slurm");
  s.pbs = site(path, root, "pbs");
  if (auto th = root.get("threads")) {
    auto arr = th->as_array();
    if (!arr || arr->empty()) bad(path, "threads", node_text(*th), "must be a non-empty list of integers >= 1");
    s.threads.clear();
    for (auto&& e : *arr) {
      const auto v = e.value<std::int64_t>();
      if (!v || *v < 1 || *v > 4096) bad(path, "threads", node_text(*th), "must be a non-empty list of integers >= 1");
      s.threads.push_back(int(*v));
    }
  }
  if (auto rq = root.get("requeue")) {
    if (!rq->is_boolean()) bad(path, "requeue", node_text(*rq), "must be true or false");
    s.requeue = rq->as_boolean()->get();
  }
  if (root.get("checkpoint_every")) {
    s.checkpoint_every = get_int(path, root, "checkpoint_every", 10, 1);
    if (!s.requeue) bad(path, "checkpoint_every", std::to_string(s.checkpoint_every), "only with requeue = true");
  }
  if (root.get("max_requeues")) {
    s.max_requeues = get_int(path, root, "max_requeues", 3, 0);
    if (!s.requeue) bad(path, "max_requeues", std::to_string(s.max_requeues), "only with requeue = true");
  }
  if (s.requeue && s.app == "partrain-collectives")
    bad(path, "requeue", "true", "partrain-collectives has no training state to checkpoint");
  return s;
}

std::vector<Point> expand(const Sweep& s, const std::string& scheduler, const std::string& result_dir) {
  std::vector<Point> pts;
  for (int r : s.ranks) {
    const int nodes = (r + s.ranks_per_node - 1) / s.ranks_per_node;
    if (nodes > 1 && r % s.ranks_per_node != 0)
      input_error("ranks", std::to_string(r),
                  "cannot be spread evenly over nodes of ranks_per_node = " + std::to_string(s.ranks_per_node));
    if (scheduler == "local" && nodes > 1)
      input_error("ranks", std::to_string(r),
                  "needs " + std::to_string(nodes) + " nodes; the local scheduler runs on this machine only "
                  "(raise ranks_per_node to oversubscribe it)");
    const bool named_threads = s.threads != std::vector<int>{1};
    for (int t : s.threads)
    for (int k = 0; k < s.repetitions; ++k) {
      Point p;
      p.ranks = r;
      p.nodes = nodes;
      p.rep = k;
      p.threads = t;
      p.name = s.name + "_r" + std::to_string(r) + (named_threads ? "_t" + std::to_string(t) : "") + "_k" +
               std::to_string(k);
      if (s.app != "partrain-collectives") p.argv = {"--input", s.deck};
      for (const auto& [key, v] : s.set) p.argv.insert(p.argv.end(), {"--set", key + "=" + v});
      for (const auto& [key, per_rank] : s.weak)
        p.argv.insert(p.argv.end(), {"--set", key + "=" + format_number(per_rank * r)});
      if (auto it = s.points.find(r); it != s.points.end())
        for (const auto& [key, v] : it->second) p.argv.insert(p.argv.end(), {"--set", key + "=" + v});
      p.argv.insert(p.argv.end(), s.args.begin(), s.args.end());
      p.argv.insert(p.argv.end(), {"--output", result_dir + "/" + p.name + ".h5"});
      if (s.requeue) {  // resumable: the attempt that finishes replaces an earlier attempt's incomplete result
        const auto slash = result_dir.find_last_of('/');
        const std::string top = slash == std::string::npos ? "." : result_dir.substr(0, slash);
        p.checkpoint_dir = top + "/checkpoints/" + p.name;
        p.argv.insert(p.argv.end(), {"--checkpoint-dir", p.checkpoint_dir, "--checkpoint-every",
                                     std::to_string(s.checkpoint_every), "--resume", "--overwrite"});
      }
      pts.push_back(p);
    }
  }
  return pts;
}

std::string binary_path(const std::string& build_dir, const std::string& app) {
  return build_dir + (app == "partrain-collectives" ? "/collectives/" : "/miniapps/") + app;
}

std::string find_binary(const std::string& exe_dir, const std::string& app) {
  const auto slash = exe_dir.find_last_of('/');
  const std::string up = slash == std::string::npos ? "." : exe_dir.substr(0, slash);
  const std::string installed = exe_dir + "/" + app, in_tree = binary_path(up, app);
  return access(in_tree.c_str(), X_OK) == 0 ? in_tree : installed;
}

namespace {
std::string quote(const std::string& a) {
  if (!a.empty() && a.find_first_of(" \t\"'$\\;&|<>()*?[]{}") == std::string::npos) return a;
  std::string q = "'";
  for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string directive(const std::string& prefix, const std::string& flag, const std::string& value) {
  if (value.empty()) return "";
  if (value.rfind("CHANGE_ME", 0) == 0)
    return "#" + prefix + " " + flag + value + "   # <- CHANGE ME: set this for your site, then remove one '#'\n";
  return prefix + " " + flag + value + "\n";
}
}  // namespace

std::string render_job(const std::string& template_path, const Sweep& s, const Point& p, const std::string& scheduler,
                       const std::string& workdir, const std::string& binary, const std::string& log_path) {
  std::ifstream in(template_path);
  if (!in) input_error("template", template_path, "missing: partrain-sweep needs jobscripts/" + scheduler + ".sh.tmpl");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::string site_lines;
  if (scheduler == "slurm") {
    site_lines += directive("#SBATCH", "--partition=", s.slurm.partition);
    site_lines += directive("#SBATCH", "--account=", s.slurm.account);
    for (const auto& d : s.slurm.directives) site_lines += "#SBATCH " + d + "\n";
  } else if (scheduler == "pbs") {
    site_lines += directive("#PBS", "-q ", s.pbs.queue);
    site_lines += directive("#PBS", "-A ", s.pbs.account);
    for (const auto& d : s.pbs.directives) site_lines += "#PBS " + d + "\n";
  }
  const bool srun = scheduler == "slurm" && s.slurm.launcher == "srun";
  if (s.requeue && scheduler == "slurm")
    site_lines += std::string("#SBATCH --requeue\n#SBATCH --open-mode=append\n") +
                  (srun ? "#SBATCH --signal=USR1@60\n" : "#SBATCH --signal=B:USR1@60\n");
  if (s.requeue && scheduler == "pbs") site_lines += "#PBS -r y\n";
  if (!site_lines.empty() && site_lines.back() == '\n') site_lines.pop_back();
  std::string launch = srun ? "srun -n " + std::to_string(p.ranks) + " --cpus-per-task=" + std::to_string(p.threads)
                            : quote(s.mpiexec) + " -n " + std::to_string(p.ranks);
  launch += " " + quote(binary);
  for (const auto& a : p.argv) launch += " " + quote(a);
  if (s.requeue && scheduler != "local") {
    // The mini-app stops on SIGUSR1 (SLURM, 60 s before the limit; forwarded to the ranks here when mpiexec launches
    // them) or SIGTERM, after writing a checkpoint, with exit code 3: the job then requeues itself and resumes.
    // A mini-app that does not stop at a step boundary (partrain-ps: its servers run at their own pace) dies of the
    // signal instead (exit 138 = 128 + SIGUSR1) and resumes from its last periodic checkpoint: requeued as well.
    // Any other failure but bad input (exit 2) — a rank or a whole node died, the watchdog ended a hung wait (124)
    // — requeues as well, at most max_requeues times per point (the count lives beside its checkpoints): the next
    // attempt resumes from the last periodic checkpoint once the scheduler has nodes again.
    std::string forward = srun ? "" : "trap 'signalled=1; pkill -USR1 -s 0 -f \"^" + binary + " \" || true' USR1\n";
    const std::string requeue = scheduler == "slurm" ? "scontrol requeue \"$SLURM_JOB_ID\"" : "qrerun \"$PBS_JOBID\"";
    const std::string count_file = quote(p.checkpoint_dir + "/requeues_after_failure");
    launch = "set +e\nsignalled=0\n" + forward + launch + " &\npid=$!\n" +
             "while true; do wait \"$pid\"; rc=$?; kill -0 \"$pid\" 2>/dev/null || break; done\n" +
             "if [ \"$rc\" -eq 3 ] || [ \"$rc\" -eq 138 ] || { [ \"$signalled\" -eq 1 ] && [ \"$rc\" -ne 0 ]; }; then\n" +
             "  echo \"stopped (exit $rc) before the time limit: requeueing; the next attempt resumes from the checkpoint\"\n  " +
             requeue + "\nelif [ \"$rc\" -ne 0 ] && [ \"$rc\" -ne 2 ]; then\n" +
             "  n=$(cat " + count_file + " 2>/dev/null || echo 0)\n" +
             "  if [ \"$n\" -lt " + std::to_string(s.max_requeues) + " ]; then\n" +
             "    mkdir -p " + quote(p.checkpoint_dir) + " && echo $((n + 1)) > " + count_file + "\n" +
             "    echo \"failed (exit $rc): requeueing ($((n + 1)) of " + std::to_string(s.max_requeues) +
             "); the next attempt resumes from the last checkpoint\"\n    " + requeue + "\n" +
             "  else\n    echo \"failed (exit $rc) after " + std::to_string(s.max_requeues) +
             " requeues (max_requeues): giving up\"\n  fi\nfi\nexit \"$rc\"";
  }
  const std::map<std::string, std::string> values = {
      {"POINT", p.name},
      {"JOB_NAME", p.name},
      {"NODES", std::to_string(p.nodes)},
      {"RANKS", std::to_string(p.ranks)},
      {"RANKS_PER_NODE", std::to_string(std::min(p.ranks, s.ranks_per_node))},
      {"TIME_LIMIT", s.time_limit},
      {"LOG", log_path},
      {"SITE_DIRECTIVES", site_lines},
      {"THREADS", std::to_string(p.threads)},
      {"CPUS_PER_NODE", std::to_string(std::min(p.ranks, s.ranks_per_node) * p.threads)},
      {"ENVIRONMENT", "export PARTRAIN_THREADS=" + std::to_string(p.threads) +
                          "   # threads per rank for BLAS and OpenMP (scripts/env.sh)\nsource " +
                          quote(workdir + "/scripts/env.sh") + "   # OMP_WAIT_POLICY=passive; OpenBLAS core fix"},
      {"WORKDIR", quote(workdir)},
      {"LAUNCH", launch}};
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "{{") == 0) {
      const size_t end = text.find("}}", i);
      const std::string key = text.substr(i + 2, end - i - 2);
      auto it = values.find(key);
      if (end == std::string::npos || it == values.end())
        input_error("template", template_path, "unknown placeholder {{" + key + "}}");
      out += it->second;
      i = end + 2;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace partrain::sweep
