#include "partrain/io/checkpoint.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/paths.hpp"

namespace partrain::io {
namespace {

constexpr const char* kSchema = "partrain.checkpoint";

struct H5Id {  // closes an HDF5 id with its own close function
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5Id() = default;
  H5Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() {
    if (id >= 0 && close) close(id);
  }
  operator hid_t() const { return id; }
};

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// fsync of a file or directory: the checkpoint is on the disk before its name says it is complete, and the name
/// after the rename — a node that crashes right after loses neither.
bool durable(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0 || errno == EINVAL;  // EINVAL: a file system without fsync (nothing to wait for)
  close(fd);
  return ok;
}

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

/// The contribution of element `flat` holding `v` (as stored: float or double bits) to its tensor's checksum; the
/// checksum is the sum mod 2^64, so ranks holding disjoint parts can add theirs.
std::uint64_t element_sum(std::int64_t flat, double v, bool float32) {
  std::uint64_t bits = 0;
  if (float32) {
    const float f = float(v);
    std::uint32_t b = 0;
    std::memcpy(&b, &f, sizeof b);
    bits = b;
  } else {
    std::memcpy(&bits, &v, sizeof bits);
  }
  return mix(std::uint64_t(flat) * 0x100000001B3ull ^ mix(bits));
}

/// Flat indices of a hyperslab of a tensor, in row-major order of the slab.
template <class F>
void for_each_flat(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& start,
                   const std::vector<std::int64_t>& count, F f) {
  const std::size_t d = shape.size();
  std::int64_t total = 1;
  for (auto c : count) total *= c;
  std::vector<std::int64_t> idx(d, 0);
  for (std::int64_t k = 0; k < total; ++k) {
    std::int64_t flat = 0;
    for (std::size_t i = 0; i < d; ++i) flat = flat * shape[i] + start[i] + idx[i];
    f(k, flat);
    for (std::size_t i = d; i-- > 0;) {
      if (++idx[i] < count[i]) break;
      idx[i] = 0;
    }
  }
}

void string_attr(hid_t loc, const char* name, const std::string& value) {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, value.size() + 1);
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id a(PARTRAIN_H5_CHECK(H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
  PARTRAIN_H5_CHECK(H5Awrite(a, type, value.c_str()));
}

template <class V>
void num_attr(hid_t loc, const char* name, hid_t type, V value) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id a(PARTRAIN_H5_CHECK(H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
  PARTRAIN_H5_CHECK(H5Awrite(a, type, &value));
}

std::string read_string_attr(hid_t loc, const char* name) {
  if (H5Aexists(loc, name) <= 0) return "";
  H5Id a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  H5Id t(H5Aget_type(a), H5Tclose);
  std::vector<char> buf(H5Tget_size(t) + 1, 0);
  H5Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem, buf.size() - 1);
  H5Aread(a, mem, buf.data());
  return buf.data();
}

template <class V>
V read_num_attr(hid_t loc, const char* name, hid_t type, V fallback) {
  if (H5Aexists(loc, name) <= 0) return fallback;
  H5Id a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  V v = fallback;
  H5Aread(a, type, &v);
  return v;
}

hid_t open_parallel(MPI_Comm comm, const std::string& path, bool create) {
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  return create ? H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
}

void select(hid_t space, const std::vector<std::int64_t>& start, const std::vector<std::int64_t>& count) {
  std::vector<hsize_t> s(start.begin(), start.end()), c(count.begin(), count.end());
  if (s.empty()) return;  // a scalar
  PARTRAIN_H5_CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, s.data(), nullptr, c.data(), nullptr));
}
}  // namespace

std::string checkpoint_path(const std::string& dir, std::int64_t step) {
  return dir + "/ckpt-" + std::to_string(step) + ".h5";
}

void write_checkpoint(MPI_Comm comm, const std::string& path, const CheckpointMeta& meta,
                      const std::vector<CheckpointTensor>& tensors, const std::vector<TensorPart>& parts, bool float32) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int pid = getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, comm);
  const std::string tmp = path + ".tmp-" + std::to_string(pid);
  // Checksums first: every rank adds its parts' contributions.
  std::vector<std::uint64_t> sums(tensors.size(), 0), total(tensors.size(), 0);
  for (const auto& p : parts) {
    const auto it = std::find_if(tensors.begin(), tensors.end(), [&](const CheckpointTensor& t) { return t.path == p.path; });
    PARTRAIN_REQUIRE(it != tensors.end(), "a part of an undeclared tensor: " + p.path);
    auto& s = sums[std::size_t(it - tensors.begin())];
    for_each_flat(it->shape, p.start, p.count, [&](std::int64_t k, std::int64_t flat) {
      s += element_sum(flat, p.values[std::size_t(k)], float32);
    });
  }
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Iallreduce(sums.data(), total.data(), int(sums.size()), MPI_UINT64_T, MPI_SUM, comm, &req));
  coll::wait(req, MPI_STATUS_IGNORE, coll::wait_policy(), "the checkpoint's checksums");
  const hid_t file = open_parallel(comm, tmp, true);
  if (file < 0) throw RuntimeError("cannot create checkpoint " + tmp);
  bool ok = true;
  try {
    const hid_t root = file;
    string_attr(root, "schema", kSchema);
    num_attr<std::int64_t>(root, "schema_version", H5T_NATIVE_INT64, 1);
    num_attr<std::int64_t>(root, "step", H5T_NATIVE_INT64, meta.step);
    string_attr(root, "model", meta.model);
    string_attr(root, "config_toml", meta.config_toml);
    for (const auto& [k, v] : meta.numbers) num_attr<double>(root, k.c_str(), H5T_NATIVE_DOUBLE, v);
    for (const auto& [k, v] : meta.strings) string_attr(root, k.c_str(), v);
    H5Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl, 1);
    const hid_t type = float32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    std::vector<hid_t> sets;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
      H5Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
      sets.push_back(PARTRAIN_H5_CHECK(H5Dcreate2(file, t.path.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT)));
      num_attr<std::uint64_t>(sets.back(), "checksum", H5T_NATIVE_UINT64, total[i]);
      string_attr(sets.back(), "units", "1");
      string_attr(sets.back(), "description", "the whole tensor " + t.path + " (reference name and shape)");
    }
    H5Id dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
    for (const auto& p : parts) {
      const auto i = std::size_t(std::find_if(tensors.begin(), tensors.end(), [&](const CheckpointTensor& t) { return t.path == p.path; }) - tensors.begin());
      H5Id fspace(H5Dget_space(sets[i]), H5Sclose);
      select(fspace, p.start, p.count);
      std::vector<hsize_t> c(p.count.begin(), p.count.end());
      H5Id mspace(c.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(c.size()), c.data(), nullptr), H5Sclose);
      PARTRAIN_H5_CHECK(H5Dwrite(sets[i], H5T_NATIVE_DOUBLE, mspace, fspace, dxpl, p.values.data()));
    }
    for (auto s : sets) H5Dclose(s);
  } catch (const std::exception&) {
    ok = false;
  }
  if (H5Fclose(file) < 0) ok = false;
  int all_ok = ok ? 1 : 0, agreed = 0;
  PARTRAIN_MPI_CHECK(MPI_Iallreduce(&all_ok, &agreed, 1, MPI_INT, MPI_MIN, comm, &req));
  coll::wait(req);
  if (rank == 0) {
    if (!agreed) std::remove(tmp.c_str());
    else if (!durable(tmp) || std::rename(tmp.c_str(), path.c_str()) != 0 || !durable(directory_of(path))) agreed = 0;
  }
  PARTRAIN_MPI_CHECK(MPI_Ibcast(&agreed, 1, MPI_INT, 0, comm, &req));
  coll::wait(req, MPI_STATUS_IGNORE, coll::wait_policy(), "the checkpoint's verdict");
  if (!agreed) throw RuntimeError("writing checkpoint " + path + " failed");
}

void read_checkpoint(MPI_Comm comm, const std::string& path, std::vector<TensorPart>& parts, CheckpointMeta* meta) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = open_parallel(comm, path, false);
  if (file < 0) throw RuntimeError("cannot open checkpoint " + path);
  if (meta) {
    meta->step = read_num_attr<std::int64_t>(file, "step", H5T_NATIVE_INT64, -1);
    meta->model = read_string_attr(file, "model");
    meta->config_toml = read_string_attr(file, "config_toml");
    H5O_info_t oinfo;
    H5Oget_info(file, &oinfo);
    for (hsize_t i = 0; i < oinfo.num_attrs; ++i) {
      H5Id a(H5Aopen_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
      char name[256] = {0};
      H5Aget_name(a, sizeof name - 1, name);
      H5Id t(H5Aget_type(a), H5Tclose);
      if (H5Tget_class(t) == H5T_FLOAT) meta->numbers[name] = read_num_attr<double>(file, name, H5T_NATIVE_DOUBLE, 0.0);
      else if (H5Tget_class(t) == H5T_STRING) meta->strings[name] = read_string_attr(file, name);
    }
  }
  H5Id dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
  for (auto& p : parts) {
    const hid_t d = H5Dopen2(file, p.path.c_str(), H5P_DEFAULT);
    if (d < 0) {
      H5Fclose(file);
      throw InputError("checkpoint " + path + " has no tensor " + p.path + " (a checkpoint of another model?)");
    }
    H5Id ds(d, H5Dclose);
    H5Id fspace(H5Dget_space(ds), H5Sclose);
    const int nd = H5Sget_simple_extent_ndims(fspace);
    std::vector<hsize_t> dims(std::size_t(std::max(nd, 0)));
    H5Sget_simple_extent_dims(fspace, dims.data(), nullptr);
    for (std::size_t i = 0; i < p.start.size(); ++i)
      if (i >= dims.size() || hsize_t(p.start[i] + p.count[i]) > dims[i]) {
        H5Fclose(file);
        throw InputError("checkpoint " + path + ": tensor " + p.path + " has another shape (a checkpoint of another model?)");
      }
    select(fspace, p.start, p.count);
    std::int64_t n = 1;
    for (auto c : p.count) n *= c;
    p.values.assign(std::size_t(n), 0.0);
    std::vector<hsize_t> c(p.count.begin(), p.count.end());
    H5Id mspace(c.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(c.size()), c.data(), nullptr), H5Sclose);
    PARTRAIN_H5_CHECK(H5Dread(ds, H5T_NATIVE_DOUBLE, mspace, fspace, dxpl, p.values.data()));
  }
  H5Fclose(file);
}

void check_checkpoint_dir(const std::string& key, const std::string& value, const std::string& dir, bool resume,
                          bool overwrite) {
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) input_error(key, value, "is not a directory");
    if (const auto why = directory_unwritable(dir); !why.empty()) input_error(key, value, "is not writable (" + why + ")");
    if (!resume && !overwrite && !checkpoint_files(dir).empty())
      input_error(key, value, "holds checkpoints of an earlier run: --resume continues it, --overwrite replaces them");
    return;
  }
  const auto slash = dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  if (stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    input_error(key, value, "cannot be created: " + parent + " is not a directory");
  if (const auto why = directory_unwritable(parent); !why.empty())
    input_error(key, value, "cannot be created: " + parent + " is not writable (" + why + ")");
}

std::vector<std::string> checkpoint_files(const std::string& dir) {
  std::vector<std::pair<std::int64_t, std::string>> found;
  if (DIR* d = opendir(dir.c_str())) {
    while (auto* e = readdir(d)) {
      const std::string n = e->d_name;
      long long step = 0;
      char tail[8] = {0};
      if (std::sscanf(n.c_str(), "ckpt-%lld.h%2s", &step, tail) == 2 && n == "ckpt-" + std::to_string(step) + ".h5")
        found.emplace_back(step, dir + "/" + n);
    }
    closedir(d);
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::string newest_valid_checkpoint(MPI_Comm comm, const std::string& dir, std::vector<std::string>* skipped) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  int rank = 0, n = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &n);
  for (const auto& path : checkpoint_files(dir)) {
    // Every rank checks a share of the tensors (whole), then they agree; the first problem found is reported.
    std::string problem;
    if (H5Fis_hdf5(path.c_str()) <= 0) problem = "not a readable HDF5 file (truncated?)";
    int bad_open = problem.empty() ? 0 : 1, any = 0;
    MPI_Request req;
    PARTRAIN_MPI_CHECK(MPI_Iallreduce(&bad_open, &any, 1, MPI_INT, MPI_MAX, comm, &req));
    coll::wait(req);
    if (!any) {
      const hid_t file = open_parallel(comm, path, false);
      if (file < 0) problem = "cannot be opened (truncated or corrupt)";
      else {
        if (read_string_attr(file, "schema") != kSchema) problem = "not a partrain checkpoint";
        bool float32 = true;
        std::vector<std::string> sets;
        H5Ovisit(
            file, H5_INDEX_NAME, H5_ITER_INC,
            [](hid_t, const char* name, const H5O_info_t* info, void* out) {
              if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
              return herr_t(0);
            },
            &sets);
        for (std::size_t k = std::size_t(rank); k < sets.size() && problem.empty(); k += std::size_t(n)) {
          H5Id ds(H5Dopen2(file, sets[k].c_str(), H5P_DEFAULT), H5Dclose);
          H5Id t(H5Dget_type(ds), H5Tclose);
          float32 = H5Tget_size(t) == 4;
          H5Id sp(H5Dget_space(ds), H5Sclose);
          const int nd = H5Sget_simple_extent_ndims(sp);
          std::vector<hsize_t> dims(std::size_t(std::max(nd, 0)));
          H5Sget_simple_extent_dims(sp, dims.data(), nullptr);
          std::int64_t total = 1;
          for (auto x : dims) total *= std::int64_t(x);
          std::vector<double> v(static_cast<std::size_t>(total));
          if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0) {
            problem = "tensor " + sets[k] + " cannot be read";
            break;
          }
          std::uint64_t s = 0;
          for (std::int64_t i = 0; i < total; ++i) s += element_sum(i, v[std::size_t(i)], float32);
          if (s != read_num_attr<std::uint64_t>(ds, "checksum", H5T_NATIVE_UINT64, ~s)) problem = "tensor " + sets[k] + ": checksum mismatch";
        }
        H5Fclose(file);
      }
    }
    // Agree: the lowest rank with a problem reports it.
    int mine = problem.empty() ? n : rank, first = n;
    PARTRAIN_MPI_CHECK(MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm, &req));
    coll::wait(req);
    if (first == n) return path;
    char msg[512] = {0};
    if (rank == first) std::snprintf(msg, sizeof msg, "%s", problem.c_str());
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, first, comm);
    if (skipped) skipped->push_back(path + ": " + msg);
  }
  return "";
}

void prune_checkpoints(const std::string& dir, int keep) {
  const auto files = checkpoint_files(dir);
  for (std::size_t i = std::size_t(std::max(keep, 0)); i < files.size(); ++i) std::remove(files[i].c_str());
  // Temporaries of writes that never finished (a job killed while writing).
  if (DIR* d = opendir(dir.c_str())) {
    std::vector<std::string> stale;
    while (auto* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("ckpt-", 0) == 0 && n.find(".h5.tmp-") != std::string::npos) stale.push_back(dir + "/" + n);
    }
    closedir(d);
    for (const auto& s : stale) std::remove(s.c_str());
  }
}

template <class T>
std::vector<TensorPart> flat_range_parts(const models::ParamStore<T>& ps, const std::string& group, std::int64_t begin,
                                         std::int64_t end, const double* values) {
  std::vector<TensorPart> out;
  for (const auto& p : ps.infos()) {
    const std::int64_t a = std::max(begin, p.offset), b = std::min(end, p.offset + p.size);
    if (a >= b) continue;
    const std::string path = group + "/" + p.name;
    const double* v = values + (a - begin);
    std::int64_t lo = a - p.offset, hi = b - p.offset;
    if (p.shape.size() <= 1) {  // 1D (or scalar): one contiguous part
      out.push_back({path, {lo}, {hi - lo}, std::vector<double>(v, v + (hi - lo))});
      continue;
    }
    const std::int64_t cols = p.size / p.shape[0];
    auto piece = [&](std::int64_t r, std::int64_t c, std::int64_t rows, std::int64_t ncols) {
      const std::int64_t n = rows * ncols;
      out.push_back({path, {r, c}, {rows, ncols}, std::vector<double>(v, v + n)});
      v += n;
    };
    PARTRAIN_REQUIRE(p.shape.size() == 2, "checkpoint parts of tensors of more than 2 dimensions");
    if (lo % cols) {  // a partial first row
      const std::int64_t c0 = lo % cols, c1 = std::min(cols, c0 + (hi - lo));
      piece(lo / cols, c0, 1, c1 - c0);
      lo += c1 - c0;
    }
    if (hi - lo >= cols) {  // whole rows
      const std::int64_t rows = (hi - lo) / cols;
      piece(lo / cols, 0, rows, cols);
      lo += rows * cols;
    }
    if (hi > lo) piece(lo / cols, 0, 1, hi - lo);  // a partial last row
  }
  return out;
}

template <class T>
std::vector<CheckpointTensor> store_tensors(const models::ParamStore<T>& ps, const std::string& group) {
  std::vector<CheckpointTensor> out;
  for (const auto& p : ps.infos()) out.push_back({group + "/" + p.name, p.shard.global_shape});
  return out;
}

template std::vector<TensorPart> flat_range_parts<float>(const models::ParamStore<float>&, const std::string&,
                                                         std::int64_t, std::int64_t, const double*);
template std::vector<TensorPart> flat_range_parts<double>(const models::ParamStore<double>&, const std::string&,
                                                          std::int64_t, std::int64_t, const double*);
template std::vector<TensorPart> flat_range_parts<bf16>(const models::ParamStore<bf16>&, const std::string&,
                                                        std::int64_t, std::int64_t, const double*);
template std::vector<TensorPart> flat_range_parts<fp16>(const models::ParamStore<fp16>&, const std::string&,
                                                        std::int64_t, std::int64_t, const double*);
template std::vector<CheckpointTensor> store_tensors<float>(const models::ParamStore<float>&, const std::string&);
template std::vector<CheckpointTensor> store_tensors<double>(const models::ParamStore<double>&, const std::string&);
template std::vector<CheckpointTensor> store_tensors<bf16>(const models::ParamStore<bf16>&, const std::string&);
template std::vector<CheckpointTensor> store_tensors<fp16>(const models::ParamStore<fp16>&, const std::string&);

}  // namespace partrain::io
