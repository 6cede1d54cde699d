// partrain-sweep: job scripts for a scaling sweep, for SLURM, PBS or this machine.
//   partrain-sweep inputs/sweeps/dp_gpt_strong.toml --scheduler slurm --out sweeps/strong [--submit]
//   partrain-sweep inputs/sweeps/dp_gpt_strong.toml --scheduler local --out sweeps/strong     (runs the points)
// Writes DIR/jobs/<point>.sh, and the points write DIR/results/<point>.h5 and DIR/logs/<point>.log.
// --submit hands each script to sbatch or qsub and records the job ids in DIR/jobs.tsv; --resume runs or submits
// only the points that have no result yet (and are not still queued), keeping the scripts already in DIR.
//
// Paths: the sweep's home is the first directory above the sweep file that holds jobscripts/ (the source tree, or
// share/partrain of an installation; for a sweep file elsewhere, the installation's or the source tree's); a
// relative deck is relative to it, the templates come from it, and the jobs run in it. The mini-apps are found beside partrain-sweep (its build tree or bin/), or under --build.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "partrain/core/cli.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/paths.hpp"
#include "sweep.hpp"

namespace {
using namespace partrain;

std::string absolute(const std::string& p) {
  char buf[PATH_MAX];
  if (realpath(p.c_str(), buf)) return buf;
  if (!p.empty() && p[0] == '/') return p;
  char cwd[PATH_MAX];
  return std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + p;
}

bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

std::string parent(const std::string& p) {
  const auto slash = p.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
}

/// mkdir -p: every missing directory of an absolute path.
void make_dirs(const std::string& key, const std::string& shown, const std::string& p) {
  for (std::size_t i = 1; i <= p.size(); ++i) {
    if (i != p.size() && p[i] != '/') continue;
    const std::string part = p.substr(0, i);
    struct stat st {};
    if (mkdir(part.c_str(), 0755) != 0 && (stat(part.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
      input_error(key, shown, exists(part) ? part + " is not a directory" : "cannot create the directory " + part);
  }
}

/// The sweep's home: the nearest directory above the sweep file with a jobscripts/ folder, else the directory the
/// installed templates live in (<prefix>/share/partrain beside <prefix>/bin), else the source tree this
/// partrain-sweep was built from, else the current directory.
std::string sweep_home(const std::string& sweep_file, const std::string& exe_dir) {
  for (std::string d = parent(absolute(sweep_file)); !d.empty(); d = parent(d)) {
    if (exists(d + "/jobscripts")) return d;
    if (d == "/") break;
  }
  const std::string share = parent(exe_dir) + "/share/partrain";
  if (exists(share + "/jobscripts")) return share;
  if (exists(std::string(PARTRAIN_SOURCE_DIR) + "/jobscripts")) return PARTRAIN_SOURCE_DIR;
  return absolute(".");
}

/// Runs a command, returning its exit code and stdout.
std::pair<int, std::string> capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return {-1, ""};
  char buf[512];
  while (fgets(buf, sizeof buf, f)) out += buf;
  const int rc = pclose(f);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

void progress_bar(std::size_t done, std::size_t total, const std::string& what, double elapsed) {
  const int width = 30, filled = int(width * double(done) / double(total));
  std::printf("\r[%s%s] %zu/%zu %-40s %7.1f s", std::string(std::size_t(filled), '#').c_str(),
              std::string(std::size_t(width - filled), '-').c_str(), done, total, what.c_str(), elapsed);
  std::fflush(stdout);
}

/// point → job id, from an earlier --submit's jobs.tsv.
std::map<std::string, std::string> read_jobs(const std::string& path) {
  std::map<std::string, std::string> ids;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string point, script, id;
    if (std::getline(ss, point, '\t') && std::getline(ss, script, '\t') && std::getline(ss, id)) ids[point] = id;
  }
  return ids;
}

/// True when the scheduler still knows the job as pending or running.
bool still_queued(const std::string& scheduler, const std::string& id) {
  if (id.empty()) return false;
  if (scheduler == "slurm") {
    auto [rc, out] = capture("squeue -h -j '" + id + "' -o %T 2>/dev/null");
    return rc == 0 && (out.find("PENDING") != std::string::npos || out.find("RUNNING") != std::string::npos ||
                       out.find("CONFIGURING") != std::string::npos || out.find("REQUEUED") != std::string::npos);
  }
  auto [rc, out] = capture("qstat '" + id + "' 2>/dev/null");
  return rc == 0 && !out.empty();
}

/// The progress of a suite's points, all sweeps together.
struct Progress {
  std::size_t total = 0, done = 0;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
};

std::size_t count_points(const std::string& sweep_file, const std::string& scheduler) {
  return sweep::expand(sweep::load_sweep(sweep_file), scheduler, "").size();
}

/// One sweep file into `out` (the points of a suite share `prog`'s progress line).
int run_sweep(const std::string& sweep_file, const std::string& scheduler, const std::string& out,
              const std::string& build, bool submit, bool overwrite, bool resume, Progress* prog) {
  const auto s = sweep::load_sweep(sweep_file);
  const std::string exe_dir = parent(absolute("/proc/self/exe"));
  const std::string home = sweep_home(sweep_file, exe_dir);
  const std::string bin = build.empty() ? sweep::find_binary(exe_dir, s.app) : sweep::binary_path(absolute(build), s.app);
  if (access(bin.c_str(), X_OK) != 0)
    input_error(build.empty() ? "app" : "--build", build.empty() ? s.app : build,
                s.app + " is not built " + (build.empty() ? "beside partrain-sweep" : "there") + " (run scripts/build)");
  if (!s.deck.empty() && !exists(s.deck[0] == '/' ? s.deck : home + "/" + s.deck))
    input_error(sweep_file + ": deck", s.deck, "no such file (relative decks are relative to " + home + ")");
  const std::string tmpl = home + "/jobscripts/" + scheduler + ".sh.tmpl";
  if (!exists(tmpl)) input_error("template", tmpl, "missing: partrain-sweep needs jobscripts/" + scheduler + ".sh.tmpl");
  const std::string dir = absolute(out);
  const auto points = sweep::expand(s, scheduler, dir + "/results");
  if (!resume && !overwrite) {
    if (exists(dir + "/jobs/" + points.front().name + ".sh"))
      input_error("--out", out, "holds the job scripts of an earlier sweep (--resume continues it, --overwrite replaces it)");
    for (const auto& p : points)
      if (exists(dir + "/results/" + p.name + ".h5"))
        input_error("--out", out, "already holds " + p.name + ".h5 (--resume continues the sweep, --overwrite replaces it)");
  }
  for (const char* sub : {"/jobs", "/results", "/logs"}) make_dirs("--out", out, dir + sub);
  if (s.requeue) make_dirs("--out", out, dir + "/checkpoints");
  if (const auto why = directory_unwritable(dir + "/results"); !why.empty())
    input_error("--out", out, "is not writable (" + why + ")");
  std::vector<std::string> scripts;
  std::vector<bool> todo;
  const auto earlier_jobs = resume ? read_jobs(dir + "/jobs.tsv") : std::map<std::string, std::string>{};
  for (const auto& p : points) {
    const std::string script = dir + "/jobs/" + p.name + ".sh";
    if (!(resume && exists(script))) {
      const std::string text = sweep::render_job(tmpl, s, p, scheduler, home, bin, dir + "/logs/" + p.name + ".log");
      if (overwrite) std::remove((dir + "/results/" + p.name + ".h5").c_str());
      std::ofstream(script) << text;
      chmod(script.c_str(), 0755);
    }
    scripts.push_back(script);
    bool run_it = !exists(dir + "/results/" + p.name + ".h5");
    if (run_it && resume && scheduler != "local") {
      auto it = earlier_jobs.find(p.name);
      if (it != earlier_jobs.end() && still_queued(scheduler, it->second)) {
        std::printf("partrain-sweep: %s is still queued as job %s: not submitted again\n", p.name.c_str(),
                    it->second.c_str());
        run_it = false;
      }
    }
    todo.push_back(run_it);
  }
  std::size_t pending = 0;
  for (bool t : todo) pending += t;
  if (!(prog && scheduler == "local"))  // a suite run here keeps one progress line
  std::printf("partrain-sweep: %s (%s scaling of %s), %zu points%s, %s scripts in %s/jobs\n", s.name.c_str(),
              s.kind.c_str(), s.app.c_str(), points.size(),
              resume ? (", " + std::to_string(pending) + " without a result").c_str() : "", scheduler.c_str(),
              dir.c_str());

  if (scheduler == "local") {
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    int failed = 0;
    std::size_t done = 0;
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (!todo[i]) continue;
      if (prog) progress_bar(prog->done, prog->total, points[i].name, prog->elapsed());
      else progress_bar(done, pending, points[i].name, elapsed());
      const std::string log = dir + "/logs/" + points[i].name + ".log";
      const int rc = std::system(("bash '" + scripts[i] + "' > '" + log + "' 2>&1").c_str());
      ++done;
      if (prog) ++prog->done;
      if (rc != 0) {
        ++failed;
        std::printf("\npartrain-sweep: %s failed (exit %d); see %s\n", points[i].name.c_str(), WEXITSTATUS(rc), log.c_str());
      }
    }
    if (prog) {
      if (failed) std::printf("partrain-sweep: %s: %d failed (rerun with --resume)\n", s.name.c_str(), failed);
      return failed ? 1 : 0;
    }
    if (pending) progress_bar(pending, pending, "done", elapsed());
    std::printf("%spartrain-sweep: results in %s/results%s\n", pending ? "\n" : "", dir.c_str(),
                failed ? (" (" + std::to_string(failed) + " failed: rerun with --resume)").c_str() : "");
    return failed ? 1 : 0;
  }
  if (submit) {
    auto ids = earlier_jobs;
    auto write_jobs = [&] {
      std::ofstream jobs(dir + "/jobs.tsv");
      jobs << "point\tscript\tjob_id\n";
      for (std::size_t i = 0; i < points.size(); ++i)
        if (ids.count(points[i].name)) jobs << points[i].name << "\t" << scripts[i] << "\t" << ids[points[i].name] << "\n";
    };
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (!todo[i]) continue;
      const std::string cmd = scheduler == "slurm" ? "sbatch --parsable '" + scripts[i] + "'" : "qsub '" + scripts[i] + "'";
      auto [rc, text] = capture(cmd + " 2>&1");
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      if (rc != 0) {
        write_jobs();  // what was submitted stays recorded: --resume submits the rest
        std::fprintf(stderr, "partrain-sweep: error: %s failed (exit %d): %s (--resume submits the rest)\n",
                     cmd.c_str(), rc, text.c_str());
        return 1;
      }
      ids[points[i].name] = text;
      std::printf("submitted %s as job %s\n", points[i].name.c_str(), text.c_str());
    }
    write_jobs();
    std::printf("partrain-sweep: job ids in %s/jobs.tsv\n", dir.c_str());
  }
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"partrain-sweep: job scripts for a strong or weak scaling sweep", "partrain-sweep"};
  std::string sweep_file, scheduler = "local", out, build;
  bool submit = false, overwrite = false, resume = false;
  app.add_option("sweep", sweep_file, "sweep file (inputs/sweeps/*.toml), or a suite of them (inputs/suites/*.toml)")
      ->required();
  app.add_option("--scheduler", scheduler, "slurm | pbs | local")->capture_default_str();
  app.add_option("--out", out, "output directory (created with its parents)")->required();
  app.add_option("--build", build, "partrain build directory (default: the tree partrain-sweep is in)");
  app.add_flag("--submit", submit, "submit the scripts (sbatch / qsub) and record the job ids");
  app.add_flag("--overwrite", overwrite, "replace the scripts and results of an earlier sweep in --out");
  app.add_flag("--resume", resume,
               "continue an earlier sweep in --out: run (local) or submit only the points without a result, "
               "skipping jobs still queued; existing scripts are kept");
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  if (scheduler != "slurm" && scheduler != "pbs" && scheduler != "local")
    input_error("--scheduler", scheduler, "must be slurm, pbs or local");
  if (resume && overwrite) input_error("--resume", "true", "cannot be combined with --overwrite");
  // A suite file lists sweep files (`sweeps = [...]`, relative to the suite's home): each runs into OUT/<its name>,
  // all validated before any runs, and their points share one progress line (local) or are submitted together.
  const auto suite = sweep::load_suite(sweep_file);
  if (!suite.empty()) {
    const std::string home = sweep_home(sweep_file, parent(absolute("/proc/self/exe")));
    std::vector<std::string> files;
    for (const auto& f : suite) files.push_back(f[0] == '/' ? f : home + "/" + f);
    for (const auto& f : files) (void)sweep::load_sweep(f);  // every file checked first
    Progress prog;
    for (const auto& f : files) prog.total += count_points(f, scheduler);
    int rc = 0;
    for (const auto& f : files) {
      const auto s = sweep::load_sweep(f);
      rc = std::max(rc, run_sweep(f, scheduler, out + "/" + s.name, build, submit, overwrite, resume, &prog));
    }
    if (scheduler == "local" && prog.total) std::printf("\npartrain-sweep: suite %s: %zu points in %s\n", sweep_file.c_str(), prog.total, out.c_str());
    return rc;
  }
  return run_sweep(sweep_file, scheduler, out, build, submit, overwrite, resume, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  return partrain::run_tool("partrain-sweep", [&] { return run(argc, argv); });
}
