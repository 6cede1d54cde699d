#include "partrain/io/h5.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "partrain/core/error.hpp"
#include "partrain/core/paths.hpp"

namespace partrain::io {

void check_output_path(const std::string& key, const std::string& path, bool overwrite) {
  if (path.empty()) input_error(key, "\"\"", "empty path");
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) input_error(key, path, "directory " + dir + " does not exist");
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) input_error(key, path, "is a directory");
    if (!overwrite) input_error(key, path, "file exists (pass --overwrite to replace it)");
  }
  if (const auto why = directory_unwritable(dir); !why.empty())
    input_error(key, path, "directory " + dir + " is not writable (" + why + ")");
}

template <>
hid_t h5_type<float>() { return H5T_NATIVE_FLOAT; }
template <>
hid_t h5_type<double>() { return H5T_NATIVE_DOUBLE; }
template <>
hid_t h5_type<int>() { return H5T_NATIVE_INT; }
template <>
hid_t h5_type<std::int64_t>() { return H5T_NATIVE_INT64; }
template <>
hid_t h5_type<std::uint64_t>() { return H5T_NATIVE_UINT64; }

H5Writer::H5Writer(const std::string& path, bool overwrite)
    : path_(path), tmp_(path + ".tmp-" + std::to_string(getpid())), overwrite_(overwrite) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors are reported by the check macro, not printed by HDF5
  file_ = PARTRAIN_H5_CHECK(H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
}

H5Writer::~H5Writer() {
  for (auto g : groups_) H5Gclose(g);
  if (file_ >= 0) {
    H5Fclose(file_);
    std::remove(tmp_.c_str());
  }
}

hid_t H5Writer::group(const std::string& path) {
  hid_t cur = file_;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    const std::string part = path.substr(pos, next - pos);
    pos = next + 1;
    if (part.empty()) continue;
    hid_t g = H5Lexists(cur, part.c_str(), H5P_DEFAULT) > 0
                  ? PARTRAIN_H5_CHECK(H5Gopen2(cur, part.c_str(), H5P_DEFAULT))
                  : PARTRAIN_H5_CHECK(H5Gcreate2(cur, part.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    groups_.push_back(g);
    cur = g;
  }
  return cur;
}

void H5Writer::attr(hid_t loc, const std::string& name, const std::string& value) {
  // variable-length UTF-8: h5py reads it as str, h5dump shows it whole
  hid_t type = PARTRAIN_H5_CHECK(H5Tcopy(H5T_C_S1));
  PARTRAIN_H5_CHECK(H5Tset_size(type, H5T_VARIABLE));
  PARTRAIN_H5_CHECK(H5Tset_cset(type, H5T_CSET_UTF8));
  hid_t space = PARTRAIN_H5_CHECK(H5Screate(H5S_SCALAR));
  hid_t a = PARTRAIN_H5_CHECK(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
  const char* text = value.c_str();
  PARTRAIN_H5_CHECK(H5Awrite(a, type, &text));
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
}

namespace {
template <class T>
void numeric_attr(hid_t loc, const std::string& name, T value) {
  hid_t space = PARTRAIN_H5_CHECK(H5Screate(H5S_SCALAR));
  hid_t a = PARTRAIN_H5_CHECK(H5Acreate2(loc, name.c_str(), h5_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT));
  PARTRAIN_H5_CHECK(H5Awrite(a, h5_type<T>(), &value));
  H5Aclose(a);
  H5Sclose(space);
}
}  // namespace

void H5Writer::attr(hid_t loc, const std::string& name, double value) { numeric_attr(loc, name, value); }
void H5Writer::attr(hid_t loc, const std::string& name, std::int64_t value) { numeric_attr(loc, name, value); }

template <class T>
void H5Writer::dataset(hid_t loc, const std::string& name, const T* data, const std::vector<hsize_t>& dims,
                       const Meta& meta) {
  hid_t space = dims.empty() ? PARTRAIN_H5_CHECK(H5Screate(H5S_SCALAR))
                             : PARTRAIN_H5_CHECK(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  hid_t d = PARTRAIN_H5_CHECK(
      H5Dcreate2(loc, name.c_str(), h5_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  hsize_t n = 1;
  for (auto x : dims) n *= x;
  if (n > 0) PARTRAIN_H5_CHECK(H5Dwrite(d, h5_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  attr(d, "units", meta.units);
  attr(d, "description", meta.description);
  H5Dclose(d);
  H5Sclose(space);
}

template void H5Writer::dataset<float>(hid_t, const std::string&, const float*, const std::vector<hsize_t>&, const Meta&);
template void H5Writer::dataset<double>(hid_t, const std::string&, const double*, const std::vector<hsize_t>&, const Meta&);
template void H5Writer::dataset<int>(hid_t, const std::string&, const int*, const std::vector<hsize_t>&, const Meta&);
template void H5Writer::dataset<std::int64_t>(hid_t, const std::string&, const std::int64_t*,
                                              const std::vector<hsize_t>&, const Meta&);

void H5Writer::commit() {
  for (auto g : groups_) H5Gclose(g);
  groups_.clear();
  PARTRAIN_H5_CHECK(H5Fclose(file_));
  file_ = -1;
  struct stat st {};
  if (!overwrite_ && stat(path_.c_str(), &st) == 0) {
    std::remove(tmp_.c_str());
    throw InputError(path_ + ": file appeared while the run was going (pass --overwrite to replace it)");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    throw RuntimeError("cannot rename " + tmp_ + " to " + path_);
  }
}

}  // namespace partrain::io
