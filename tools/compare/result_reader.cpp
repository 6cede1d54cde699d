#include "result_reader.hpp"

#include <dirent.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <functional>
#include <sstream>

#include "partrain/core/error.hpp"

namespace partrain::compare {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& why) { throw InputError(path + ": " + why); }

struct Closer {
  hid_t id;
  herr_t (*fn)(hid_t);
  ~Closer() {
    if (id >= 0) fn(id);
  }
};

bool has_attr(hid_t loc, const char* name) { return H5Aexists(loc, name) > 0; }

std::string str_attr(const std::string& path, hid_t loc, const char* name, bool required = true) {
  if (!has_attr(loc, name)) {
    if (required) bad(path, std::string("missing attribute ") + name);
    return "";
  }
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  Closer ca{a, H5Aclose};
  hid_t t = H5Aget_type(a);
  Closer ct{t, H5Tclose};
  if (a < 0 || t < 0 || H5Tget_class(t) != H5T_STRING) bad(path, std::string("attribute ") + name + " is not a string");
  hid_t mem = H5Tcopy(H5T_C_S1);
  Closer cm{mem, H5Tclose};
  H5Tset_cset(mem, H5Tget_cset(t));  // HDF5 does not convert between ASCII and UTF-8
  std::string out;
  if (H5Tis_variable_str(t) > 0) {
    H5Tset_size(mem, H5T_VARIABLE);
    char* s = nullptr;
    if (H5Aread(a, mem, &s) < 0) bad(path, std::string("cannot read attribute ") + name);
    out = s ? s : "";
    hid_t space = H5Aget_space(a);
    H5Dvlen_reclaim(mem, space, H5P_DEFAULT, &s);
    H5Sclose(space);
  } else {
    const size_t n = H5Tget_size(t);
    std::vector<char> buf(n + 1, 0);
    H5Tset_size(mem, n);
    if (H5Aread(a, mem, buf.data()) < 0) bad(path, std::string("cannot read attribute ") + name);
    out = buf.data();
  }
  return out;
}

double num_attr(const std::string& path, hid_t loc, const char* name, bool required = true) {
  if (!has_attr(loc, name)) {
    if (required) bad(path, std::string("missing attribute ") + name);
    return NAN;
  }
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  Closer ca{a, H5Aclose};
  hid_t t = H5Aget_type(a);
  Closer ct{t, H5Tclose};
  const auto cls = H5Tget_class(t);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) bad(path, std::string("attribute ") + name + " is not a number");
  double v = NAN;
  if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) bad(path, std::string("cannot read attribute ") + name);
  return v;
}

std::vector<double> dataset(const std::string& path, hid_t file, const std::string& name) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) return {};
  hid_t d = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  Closer cd{d, H5Dclose};
  if (d < 0) bad(path, "cannot open " + name);
  hid_t s = H5Dget_space(d);
  Closer cs{s, H5Sclose};
  const hssize_t n = H5Sget_simple_extent_npoints(s);
  std::vector<double> v(std::size_t(std::max<hssize_t>(n, 0)));
  if (n > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0) bad(path, "cannot read " + name);
  return v;
}

void flatten(const toml::table& t, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (auto&& [k, v] : t) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto sub = v.as_table()) {
      flatten(*sub, key, out);
    } else {
      std::ostringstream os;
      v.visit([&](auto&& x) { os << x; });
      out[key] = os.str();
    }
  }
}

}  // namespace

Run read_run(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path.c_str()) <= 0) bad(path, "not an HDF5 file (or unreadable)");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  Closer cf{f, H5Fclose};
  if (f < 0) bad(path, "cannot open (corrupt HDF5 file?)");
  if (!has_attr(f, "schema")) bad(path, "not a partrain result file (no schema attribute)");
  const std::string schema = str_attr(path, f, "schema");
  if (schema != "partrain.result") bad(path, "not a partrain result file (schema \"" + schema + "\")");
  const double version = num_attr(path, f, "schema_version");
  if (version != 1.0)
    bad(path, "schema_version " + std::to_string(int(version)) + "; this partrain-compare reads version 1");
  Run r;
  r.path = path;
  r.app = str_attr(path, f, "app");
  r.strategy = str_attr(path, f, "strategy");
  r.variant = str_attr(path, f, "variant", false);
  if (!r.variant.empty()) r.strategy += " " + r.variant;  // runs of one strategy group by variant: "pp 1f1b m=8"
  r.model = str_attr(path, f, "model");
  r.hostnames = str_attr(path, f, "hostnames");
  r.git_commit = str_attr(path, f, "git_commit");
  r.created_utc = str_attr(path, f, "created_utc");
  r.mpi_version = str_attr(path, f, "mpi_version");
  r.blas = str_attr(path, f, "blas");
  r.config_toml = str_attr(path, f, "config_toml");
  r.nranks = int(num_attr(path, f, "nranks"));
  if (const double t = num_attr(path, f, "threads", false); t >= 1) r.threads = int(t);
  r.dp = int(num_attr(path, f, "dp"));
  r.tp = int(num_attr(path, f, "tp"));
  r.pp = int(num_attr(path, f, "pp"));
  try {
    flatten(toml::parse(r.config_toml), "", r.config);
    // the keys of the model kinds this run does not train (model.nmt.* in a GPT run): a later version that declares
    // a new kind must not make older results "config differs"
    const auto kind = r.config.find("model.kind");
    if (kind != r.config.end()) {
      std::string k = kind->second;
      k.erase(std::remove(k.begin(), k.end(), '"'), k.end());
      for (auto it = r.config.begin(); it != r.config.end();) {
        const auto& key = it->first;
        const bool other_kind = key.rfind("model.", 0) == 0 && std::count(key.begin(), key.end(), '.') >= 2 &&
                                key.compare(6, k.size() + 1, k + ".") != 0;
        it = other_kind ? r.config.erase(it) : std::next(it);
      }
    }
  } catch (const toml::parse_error&) {
    bad(path, "config_toml is not valid TOML");
  }
  if (H5Lexists(f, "summary", H5P_DEFAULT) > 0) {
    hid_t g = H5Gopen2(f, "summary", H5P_DEFAULT);
    Closer cg{g, H5Gclose};
    r.step_time_s = num_attr(path, g, "step_time_median_s", false);
    r.samples_per_s = num_attr(path, g, "samples_per_s", false);
    r.tokens_per_s = num_attr(path, g, "tokens_per_s", false);
    r.comm_exposed_s = num_attr(path, g, "comm_exposed_s", false);
    r.comm_exposed_share = num_attr(path, g, "comm_exposed_share", false);
    r.predicted_step_time_s = num_attr(path, g, "predicted_step_time_s", false);
    r.bubble_fraction = num_attr(path, g, "bubble_fraction", false);
    double mem = 0;
    for (const char* k : {"params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "comm_buffers_bytes"})
      mem += num_attr(path, g, k, false);  // NaN when a file has none of them (collectives)
    r.memory_bytes = mem;
  }
  if (r.strategy == "collectives") {
    const std::string op = str_attr(path, f, "op", false);
    if (!op.empty()) r.model = op;
    for (const char* algo : {"ring", "recdbl", "tree", "vendor", "shm", "hier", "auto"}) {
      const auto bw = dataset(path, f, std::string("collectives/") + algo + "/busbw_GBps");
      const auto t = dataset(path, f, std::string("collectives/") + algo + "/time_max_s");
      if (bw.empty()) continue;
      if (std::isnan(r.busbw_GBps) || bw.back() > r.busbw_GBps) {
        r.busbw_GBps = bw.back();
        r.busbw_algo = algo;
        r.step_time_s = t.empty() ? NAN : t.back();
        const auto pt = dataset(path, f, std::string("collectives/") + algo + "/predicted_time_s");  // with --profile
        r.predicted_step_time_s = pt.empty() ? NAN : pt.back();
      }
    }
  }
  return r;
}

namespace {
/// Every file below `dir` whose name ends in `suffix`, sorted.
std::vector<std::string> files_below(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  std::function<void(const std::string&)> walk = [&](const std::string& at) {
    DIR* d = opendir(at.c_str());
    if (!d) return;
    while (auto* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string p = at + "/" + name;
      struct stat s {};
      if (stat(p.c_str(), &s) != 0) continue;
      if (S_ISDIR(s.st_mode)) walk(p);
      else if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        out.push_back(p);
    }
    closedir(d);
  };
  walk(dir);
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::string> result_files(const std::string& arg) {
  struct stat st {};
  if (stat(arg.c_str(), &st) != 0) throw InputError(arg + ": no such file or directory");
  if (!S_ISDIR(st.st_mode)) return {arg};
  auto out = files_below(arg, ".h5");
  if (out.empty()) throw InputError(arg + ": no result files (*.h5) in this directory");
  return out;
}

std::string machine_profile_of(const std::string& arg) {
  struct stat st {};
  if (stat(arg.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "";
  const auto found = files_below(arg, "machine.toml");
  std::vector<std::string> exact;
  for (const auto& f : found)
    if (f.size() >= 13 && f.compare(f.size() - 13, 13, "/machine.toml") == 0) exact.push_back(f);
  return exact.size() == 1 ? exact.front() : "";
}

}  // namespace partrain::compare
