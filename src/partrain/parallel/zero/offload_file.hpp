// ZeRO-Infinity's NVMe offload on any filesystem: a rank's optimizer state (and, at stage 3, its parameter shard)
// kept in a file under zero.offload_dir instead of memory. The file holds `slabs` arrays of n elements (Adam's m
// and v, then the parameters), slab after slab. stream() walks [0, n) in chunks through a staging buffer of two
// slots: chunk k+1 is read (POSIX AIO) while chunk k is updated, and every chunk is written back as soon as it is
// done; the staging buffer (2 · slabs · chunk elements, "optim/offload.staging") is all the memory the state takes.
// The stream uses O_DIRECT where the filesystem allows it (4 KiB-aligned slabs, chunks and staging buffer), so that
// the state really goes to the device instead of staying in the page cache; elsewhere (tmpfs) it falls back to
// buffered I/O and says so (direct()).
// Every I/O call is checked: a full disk, a failed write or a short read (a file truncated under us) is an error
// naming the file and what happened — never a silently wrong update.
#pragma once

#include <aio.h>

#include <functional>
#include <string>

#include "partrain/core/types.hpp"

namespace partrain::parallel::zero {

template <class T>
class OffloadFile {
 public:
  using HostView = Kokkos::View<T*, Kokkos::LayoutRight, Kokkos::HostSpace>;
  /// The chunk body: elements [a, b) of the arrays, each slab's chunk at slabs[s] (host memory, b − a elements).
  using ChunkFn = std::function<void(std::int64_t a, std::int64_t b, T* const* slabs)>;

  /// Creates (truncates) `<dir>/partrain-zero-<pid>-r<rank>.state` of slabs · n elements, zero-filled.
  OffloadFile(const std::string& dir, int rank, std::int64_t n, int slabs, std::int64_t staging_bytes);
  ~OffloadFile();  ///< closes and removes the file
  OffloadFile(const OffloadFile&) = delete;
  OffloadFile& operator=(const OffloadFile&) = delete;

  /// Writes elements [a, a + count) of slab s (synchronous).
  void write(int slab, std::int64_t a, std::int64_t count, const T* data);
  /// Reads elements [a, a + count) of slab s (synchronous).
  void read(int slab, std::int64_t a, std::int64_t count, T* out);
  /// Reads, calls fn on, and writes back every chunk of every slab, reads and writes overlapping the calls.
  void stream(const ChunkFn& fn);

  const std::string& path() const { return path_; }
  bool direct() const { return direct_; }
  std::int64_t chunk_elements() const { return chunk_; }
  std::int64_t staging_bytes() const { return std::int64_t(staging_.size() * sizeof(T)); }
  std::int64_t bytes_read() const { return bytes_read_; }
  std::int64_t bytes_written() const { return bytes_written_; }
  double io_wait_s() const { return io_wait_s_; }  ///< time stream() waited for I/O (not hidden behind updates)

  /// A dd-style sequential rate of `dir`: writes `bytes` with fdatasync, drops them from the page cache, reads them
  /// back; returns {write, read} bytes per second. Removes its file.
  static std::pair<double, double> sequential_rate(const std::string& dir, std::int64_t bytes);
  /// InputError (naming `key`) when `dir` is missing, not a directory, not writable, or has less than `need` bytes
  /// free. Leaves nothing behind.
  static void check_directory(const std::string& key, const std::string& dir, std::int64_t need);

 private:
  off_t offset(int slab, std::int64_t a) const { return off_t((std::int64_t(slab) * n_pad_ + a) * std::int64_t(sizeof(T))); }
  void start(aiocb& cb, bool write, int slab, std::int64_t a, std::int64_t count, T* buf);
  void finish(aiocb& cb, bool write, std::int64_t expected_bytes);

  std::string path_;
  int fd_ = -1, fd_buffered_ = -1, slabs_;  ///< the stream's descriptor (O_DIRECT where possible), and a buffered one
  bool direct_ = false;
  std::int64_t n_, n_pad_, align_, chunk_;  ///< n_pad_: a slab's elements rounded up to the alignment
  void* staging_mem_ = nullptr;
  HostView staging_;  ///< [2 slots][slabs][chunk], 4 KiB-aligned
  std::int64_t bytes_read_ = 0, bytes_written_ = 0;
  double io_wait_s_ = 0;
};

extern template class OffloadFile<float>;
extern template class OffloadFile<double>;
extern template class OffloadFile<bf16>;
extern template class OffloadFile<fp16>;

}  // namespace partrain::parallel::zero
