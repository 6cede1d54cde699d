// Thin RAII over the HDF5 C API, for writing result and state files: a file written under a temporary name and
// renamed into place when complete (a reader never sees a half-written file), groups, attributes, datasets.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace partrain::io {

/// Rejects, with an InputError naming `key`, a path whose directory does not exist or cannot be written, or which
/// exists already (unless overwrite). Call at start-up, before any work.
void check_output_path(const std::string& key, const std::string& path, bool overwrite);

template <class T>
hid_t h5_type();

/// What every dataset says about itself (as CF and NeXus files do), so that `h5dump -A` alone explains a file:
/// the `units` attribute ("s", "B", "1" for a count or ratio, "nats") and a one-line `description`.
struct Meta {
  std::string units, description;
};

/// An HDF5 file being written to "<path>.tmp-<pid>"; commit() closes and renames it to <path>. Destroyed without
/// commit(), it removes the temporary file.
class H5Writer {
 public:
  H5Writer(const std::string& path, bool overwrite);
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  hid_t root() const { return file_; }
  /// Creates /a/b/c (and parents) if missing; returns an open group id the writer closes.
  hid_t group(const std::string& path);

  void attr(hid_t loc, const std::string& name, const std::string& value);
  void attr(hid_t loc, const std::string& name, double value);
  void attr(hid_t loc, const std::string& name, std::int64_t value);

  /// A dataset with its `units` and `description` attributes.
  template <class T>
  void dataset(hid_t loc, const std::string& name, const T* data, const std::vector<hsize_t>& dims, const Meta& meta);
  template <class T>
  void scalar(hid_t loc, const std::string& name, T value, const Meta& meta) {
    dataset<T>(loc, name, &value, {}, meta);
  }

  void commit();

 private:
  std::string path_, tmp_;
  bool overwrite_;
  hid_t file_ = -1;
  std::vector<hid_t> groups_;
};

}  // namespace partrain::io
