// partrain-sweep: job scripts for a scaling sweep, for SLURM, PBS or this machine.
//   partrain-sweep inputs/sweeps/dp_gpt_strong.toml --scheduler slurm --out sweeps/strong [--submit]
//   partrain-sweep inputs/sweeps/dp_gpt_strong.toml --scheduler local --out sweeps/strong     (runs the points)
// Writes DIR/jobs/<point>.sh, and the points write DIR/results/<point>.h5 and DIR/logs/<point>.log.
// --submit hands each script to sbatch or qsub and records the job ids in DIR/jobs.tsv.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "partrain/core/cli.hpp"
#include "partrain/core/error.hpp"
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

void make_dir(const std::string& p) {
  if (mkdir(p.c_str(), 0755) != 0 && !exists(p)) input_error("--out", p, "cannot create the directory");
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

int run(int argc, char** argv) {
  CLI::App app{"partrain-sweep: job scripts for a strong or weak scaling sweep", "partrain-sweep"};
  std::string sweep_file, scheduler = "local", out, build = "build/release";
  bool submit = false, overwrite = false;
  app.add_option("sweep", sweep_file, "sweep file (inputs/sweeps/*.toml)")->required();
  app.add_option("--scheduler", scheduler, "slurm | pbs | local")->capture_default_str();
  app.add_option("--out", out, "output directory")->required();
  app.add_option("--build", build, "partrain build directory")->capture_default_str();
  app.add_flag("--submit", submit, "submit the scripts (sbatch / qsub) and record the job ids");
  app.add_flag("--overwrite", overwrite, "replace the scripts of an earlier sweep in --out");
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  if (scheduler != "slurm" && scheduler != "pbs" && scheduler != "local")
    input_error("--scheduler", scheduler, "must be slurm, pbs or local");
  const auto s = sweep::load_sweep(sweep_file);
  const std::string workdir = absolute(".");
  const std::string bin = sweep::binary_path(absolute(build), s.app);
  if (access(bin.c_str(), X_OK) != 0) input_error("--build", build, s.app + " is not built there (run scripts/build)");
  if (!s.deck.empty() && !exists(workdir + "/" + s.deck) && !exists(s.deck))
    input_error(sweep_file + ": deck", s.deck, "no such file");
  const std::string tmpl = workdir + "/jobscripts/" + scheduler + ".sh.tmpl";
  const std::string dir = absolute(out);
  const auto points = sweep::expand(s, scheduler, dir + "/results");
  if (exists(dir + "/jobs/" + points.front().name + ".sh") && !overwrite)
    input_error("--out", out, "holds the job scripts of an earlier sweep (pass --overwrite to replace them)");
  for (const auto& p : points)
    if (exists(dir + "/results/" + p.name + ".h5") && !overwrite)
      input_error("--out", out, "already holds " + p.name + ".h5 (pass --overwrite, or choose another directory)");
  make_dir(dir);
  make_dir(dir + "/jobs");
  make_dir(dir + "/results");
  make_dir(dir + "/logs");
  std::vector<std::string> scripts;
  for (const auto& p : points) {
    const std::string script = dir + "/jobs/" + p.name + ".sh";
    const std::string text = sweep::render_job(tmpl, s, p, scheduler, workdir, bin, dir + "/logs/" + p.name + ".log");
    if (overwrite) std::remove((dir + "/results/" + p.name + ".h5").c_str());
    std::ofstream(script) << text;
    chmod(script.c_str(), 0755);
    scripts.push_back(script);
  }
  std::printf("partrain-sweep: %s (%s scaling of %s), %zu points, %s scripts in %s/jobs\n", s.name.c_str(),
              s.kind.c_str(), s.app.c_str(), points.size(), scheduler.c_str(), dir.c_str());

  if (scheduler == "local") {
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    int failed = 0;
    for (std::size_t i = 0; i < points.size(); ++i) {
      progress_bar(i, points.size(), points[i].name, elapsed());
      const std::string log = dir + "/logs/" + points[i].name + ".log";
      const int rc = std::system(("bash '" + scripts[i] + "' > '" + log + "' 2>&1").c_str());
      if (rc != 0) {
        ++failed;
        std::printf("\npartrain-sweep: %s failed (exit %d); see %s\n", points[i].name.c_str(), WEXITSTATUS(rc), log.c_str());
      }
    }
    progress_bar(points.size(), points.size(), "done", elapsed());
    std::printf("\npartrain-sweep: results in %s/results\n", dir.c_str());
    return failed ? 1 : 0;
  }
  if (submit) {
    std::ofstream jobs(dir + "/jobs.tsv");
    jobs << "point\tscript\tjob_id\n";
    for (std::size_t i = 0; i < points.size(); ++i) {
      const std::string cmd = scheduler == "slurm" ? "sbatch --parsable '" + scripts[i] + "'" : "qsub '" + scripts[i] + "'";
      auto [rc, text] = capture(cmd + " 2>&1");
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      if (rc != 0) {
        std::fprintf(stderr, "partrain-sweep: error: %s failed (exit %d): %s\n", cmd.c_str(), rc, text.c_str());
        return 1;
      }
      jobs << points[i].name << "\t" << scripts[i] << "\t" << text << "\n";
      std::printf("submitted %s as job %s\n", points[i].name.c_str(), text.c_str());
    }
    std::printf("partrain-sweep: job ids in %s/jobs.tsv\n", dir.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return partrain::run_tool("partrain-sweep", [&] { return run(argc, argv); });
}
