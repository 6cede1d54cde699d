#include "partrain/parallel/zero/offload_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/paths.hpp"
#include "partrain/core/timer.hpp"

namespace partrain::parallel::zero {
namespace {
[[noreturn]] void io_failure(const std::string& path, const std::string& what, int err) {
  throw RuntimeError("zero.offload_dir: " + path + ": " + what + (err ? std::string(": ") + std::strerror(err) : ""));
}
}  // namespace

template <class T>
void OffloadFile<T>::check_directory(const std::string& key, const std::string& dir, std::int64_t need) {
  struct stat st {};
  if (dir.empty()) input_error(key, "\"\"", "an offload directory is needed for zero.offload = \"file\"");
  if (stat(dir.c_str(), &st) != 0) input_error(key, "\"" + dir + "\"", "does not exist");
  if (!S_ISDIR(st.st_mode)) input_error(key, "\"" + dir + "\"", "is not a directory");
  if (const auto why = directory_unwritable(dir); !why.empty())
    input_error(key, "\"" + dir + "\"", "is not writable (" + why + ")");
  struct statvfs vfs {};
  if (statvfs(dir.c_str(), &vfs) == 0) {
    const std::int64_t free_bytes = std::int64_t(vfs.f_bavail) * std::int64_t(vfs.f_frsize);
    if (free_bytes < need)
      input_error(key, "\"" + dir + "\"", "has " + std::to_string(free_bytes) + " bytes free; the offloaded state needs " +
                                              std::to_string(need));
  }
}

template <class T>
OffloadFile<T>::OffloadFile(const std::string& dir, int rank, std::int64_t n, int slabs, std::int64_t staging_bytes)
    : path_(dir + "/partrain-zero-" + std::to_string(getpid()) + "-r" + std::to_string(rank) + ".state"),
      slabs_(slabs),
      n_(n) {
  align_ = 4096 / std::int64_t(sizeof(T));  // O_DIRECT: offsets, lengths and buffers in whole 4 KiB blocks
  n_pad_ = (n + align_ - 1) / align_ * align_;
  chunk_ = std::max<std::int64_t>(1, staging_bytes / (2 * slabs * std::int64_t(sizeof(T))));
  chunk_ = std::max(align_, chunk_ / align_ * align_);
  chunk_ = std::min(chunk_, std::max(n_pad_, align_));
  const std::size_t bytes = std::size_t(2 * slabs * chunk_) * sizeof(T);
  if (posix_memalign(&staging_mem_, 4096, bytes) != 0) throw RuntimeError("cannot allocate the offload staging buffer");
  std::memset(staging_mem_, 0, bytes);
  memory_track_external("optim/offload.staging", staging_mem_, std::int64_t(bytes));
  staging_ = HostView(static_cast<T*>(staging_mem_), std::size_t(2 * slabs * chunk_));
  fd_buffered_ = open(path_.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
  if (fd_buffered_ < 0) io_failure(path_, "cannot create", errno);
  fd_ = open(path_.c_str(), O_RDWR | O_DIRECT);
  direct_ = fd_ >= 0;
  if (!direct_) fd_ = fd_buffered_;  // the filesystem refuses O_DIRECT (tmpfs): buffered I/O
  std::vector<T> zeros(std::size_t(std::min<std::int64_t>(n_pad_, 1 << 20)), T(0));
  for (int s = 0; s < slabs; ++s)
    for (std::int64_t a = 0; a < n_pad_; a += std::int64_t(zeros.size()))
      write(s, a, std::min<std::int64_t>(std::int64_t(zeros.size()), n_pad_ - a), zeros.data());
  if (fdatasync(fd_buffered_) != 0) io_failure(path_, "fdatasync failed", errno);
  bytes_written_ = 0;
}

template <class T>
OffloadFile<T>::~OffloadFile() {
  if (direct_ && fd_ >= 0) close(fd_);
  if (fd_buffered_ >= 0) close(fd_buffered_);
  unlink(path_.c_str());
  memory_untrack_external(staging_mem_);
  std::free(staging_mem_);
}

template <class T>
void OffloadFile<T>::write(int slab, std::int64_t a, std::int64_t count, const T* data) {
  const auto* p = reinterpret_cast<const char*>(data);
  std::int64_t left = count * std::int64_t(sizeof(T));
  off_t at = offset(slab, a);
  while (left > 0) {
    const ssize_t w = pwrite(fd_buffered_, p, std::size_t(left), at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) io_failure(path_, "write failed at byte " + std::to_string(at), w < 0 ? errno : ENOSPC);
    p += w;
    at += w;
    left -= w;
    bytes_written_ += w;
  }
}

template <class T>
void OffloadFile<T>::read(int slab, std::int64_t a, std::int64_t count, T* out) {
  auto* p = reinterpret_cast<char*>(out);
  std::int64_t left = count * std::int64_t(sizeof(T));
  off_t at = offset(slab, a);
  while (left > 0) {
    const ssize_t r = pread(fd_buffered_, p, std::size_t(left), at);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) io_failure(path_, "read failed at byte " + std::to_string(at), errno);
    if (r == 0) io_failure(path_, "short read at byte " + std::to_string(at) + " (the file was truncated?)", 0);
    p += r;
    at += r;
    left -= r;
    bytes_read_ += r;
  }
}

template <class T>
void OffloadFile<T>::start(aiocb& cb, bool write, int slab, std::int64_t a, std::int64_t count, T* buf) {
  std::memset(&cb, 0, sizeof cb);
  cb.aio_fildes = fd_;
  cb.aio_offset = offset(slab, a);
  cb.aio_buf = buf;
  cb.aio_nbytes = std::size_t(count) * sizeof(T);
  if ((write ? aio_write(&cb) : aio_read(&cb)) != 0) io_failure(path_, write ? "aio_write failed" : "aio_read failed", errno);
}

template <class T>
void OffloadFile<T>::finish(aiocb& cb, bool write, std::int64_t expected) {
  const double t0 = wall_time_s();
  const aiocb* list[1] = {&cb};
  while (aio_error(&cb) == EINPROGRESS) aio_suspend(list, 1, nullptr);
  io_wait_s_ += wall_time_s() - t0;
  const int err = aio_error(&cb);
  const ssize_t got = aio_return(&cb);
  if (err != 0) io_failure(path_, std::string(write ? "write" : "read") + " failed at byte " + std::to_string(cb.aio_offset), err);
  if (got != expected)
    io_failure(path_, std::string(write ? "short write (disk full?)" : "short read (the file was truncated?)") +
                          " at byte " + std::to_string(cb.aio_offset) + ": " + std::to_string(got) + " of " +
                          std::to_string(expected) + " bytes",
               0);
  (write ? bytes_written_ : bytes_read_) += got;
}

template <class T>
void OffloadFile<T>::stream(const ChunkFn& fn) {
  const std::int64_t chunks = (n_ + chunk_ - 1) / chunk_;
  std::vector<aiocb> reads(std::size_t(2 * slabs_)), writes(std::size_t(2 * slabs_));
  std::vector<bool> writing(2, false);
  auto slot_ptr = [&](int slot, int slab) { return staging_.data() + (std::int64_t(slot) * slabs_ + slab) * chunk_; };
  auto bounds = [&](std::int64_t k) { return std::make_pair(k * chunk_, std::min(n_, (k + 1) * chunk_)); };
  auto io_len = [&](std::int64_t a, std::int64_t b) { return std::min(n_pad_ - a, (b - a + align_ - 1) / align_ * align_); };
  auto start_reads = [&](std::int64_t k) {
    const int slot = int(k % 2);
    if (writing[std::size_t(slot)]) {  // the slot's previous chunk must be on disk before it is refilled
      for (int s = 0; s < slabs_; ++s) finish(writes[std::size_t(slot * slabs_ + s)], true, std::int64_t(writes[std::size_t(slot * slabs_ + s)].aio_nbytes));
      writing[std::size_t(slot)] = false;
    }
    const auto [a, b] = bounds(k);
    for (int s = 0; s < slabs_; ++s) start(reads[std::size_t(slot * slabs_ + s)], false, s, a, io_len(a, b), slot_ptr(slot, s));
  };
  if (chunks > 0) start_reads(0);
  std::vector<T*> ptrs(static_cast<std::size_t>(slabs_));
  for (std::int64_t k = 0; k < chunks; ++k) {
    const int slot = int(k % 2);
    const auto [a, b] = bounds(k);
    for (int s = 0; s < slabs_; ++s)
      finish(reads[std::size_t(slot * slabs_ + s)], false, io_len(a, b) * std::int64_t(sizeof(T)));
    if (k + 1 < chunks) start_reads(k + 1);  // the next chunk arrives while this one is updated
    for (int s = 0; s < slabs_; ++s) ptrs[std::size_t(s)] = slot_ptr(slot, s);
    fn(a, b, ptrs.data());
    for (int s = 0; s < slabs_; ++s) start(writes[std::size_t(slot * slabs_ + s)], true, s, a, io_len(a, b), slot_ptr(slot, s));
    writing[std::size_t(slot)] = true;
  }
  for (int slot = 0; slot < 2; ++slot)
    if (writing[std::size_t(slot)])
      for (int s = 0; s < slabs_; ++s) finish(writes[std::size_t(slot * slabs_ + s)], true, std::int64_t(writes[std::size_t(slot * slabs_ + s)].aio_nbytes));
}

template <class T>
std::pair<double, double> OffloadFile<T>::sequential_rate(const std::string& dir, std::int64_t bytes) {
  const std::string p = dir + "/.partrain-rate-" + std::to_string(getpid());
  const int fd = open(p.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
  if (fd < 0) io_failure(p, "cannot create", errno);
  std::vector<char> buf(std::size_t(4) << 20, 'x');
  const double t0 = wall_time_s();
  for (std::int64_t done = 0; done < bytes;) {
    const ssize_t w = ::write(fd, buf.data(), std::size_t(std::min<std::int64_t>(std::int64_t(buf.size()), bytes - done)));
    if (w <= 0) {
      close(fd);
      unlink(p.c_str());
      io_failure(p, "write failed while measuring the directory's rate", w < 0 ? errno : ENOSPC);
    }
    done += w;
  }
  fdatasync(fd);
  const double t1 = wall_time_s();
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // read from the device, not the page cache, where it can
  lseek(fd, 0, SEEK_SET);
  for (;;) {
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r <= 0) break;
  }
  const double t2 = wall_time_s();
  close(fd);
  unlink(p.c_str());
  return {double(bytes) / std::max(t1 - t0, 1e-9), double(bytes) / std::max(t2 - t1, 1e-9)};
}

template class OffloadFile<float>;
template class OffloadFile<double>;
// (instantiated for the 16-bit types too, as ZeroTrainer<bf16/fp16> names it; zero_config refuses the file offload
// with mixed precision, so they never run)
template class OffloadFile<bf16>;
template class OffloadFile<fp16>;

}  // namespace partrain::parallel::zero
