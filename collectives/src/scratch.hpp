// A pool of temporary buffers for the collectives: allocated on first need ("comm/scratch", counted by the memory
// tracker as communication buffers; Kokkos zero-fills, which pre-touches every page), grown when a larger one is
// asked for, and reused by later calls. A per-call malloc of a large temporary would be served by a fresh mmap
// and pay thousands of page faults each time (DESIGN.md, Environment facts).
#pragma once

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace partrain::coll {

class ScratchPool {
  struct Buffer {
    Kokkos::View<char*, Kokkos::HostSpace> view;
    bool busy = false;
  };

 public:
  /// A buffer held by one operation; returned to the pool when the lease is destroyed.
  class Lease {
   public:
    Lease() = default;
    explicit Lease(Buffer* b) : buf_(b) {}
    Lease(Lease&& o) noexcept : buf_(o.buf_) { o.buf_ = nullptr; }
    Lease& operator=(Lease&& o) noexcept {
      release();
      buf_ = o.buf_;
      o.buf_ = nullptr;
      return *this;
    }
    ~Lease() { release(); }
    char* data() const { return buf_ ? buf_->view.data() : nullptr; }

   private:
    void release() {
      if (buf_) buf_->busy = false;
      buf_ = nullptr;
    }
    Buffer* buf_ = nullptr;
  };

  /// A free buffer of at least `bytes` bytes (the smallest that fits; the largest free one grown otherwise).
  Lease acquire(std::int64_t bytes) {
    if (bytes <= 0) bytes = 1;
    Buffer* best = nullptr;
    for (auto& b : buffers_)
      if (!b->busy && std::int64_t(b->view.extent(0)) >= bytes &&
          (!best || b->view.extent(0) < best->view.extent(0)))
        best = b.get();
    if (!best) {
      for (auto& b : buffers_)
        if (!b->busy && (!best || b->view.extent(0) > best->view.extent(0))) best = b.get();
      if (!best) {
        buffers_.push_back(std::make_unique<Buffer>());
        best = buffers_.back().get();
      }
      best->view = Kokkos::View<char*, Kokkos::HostSpace>();  // free before allocating the larger one
      best->view = Kokkos::View<char*, Kokkos::HostSpace>("comm/scratch", std::size_t(bytes));
    }
    best->busy = true;
    return Lease(best);
  }

 private:
  std::vector<std::unique_ptr<Buffer>> buffers_;
};

}  // namespace partrain::coll
