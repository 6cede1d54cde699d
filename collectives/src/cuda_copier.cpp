// The staged path's copies in a CUDA build: cudaMemcpy (synchronous, on the default stream, after the device's
// work that wrote the buffer) and pinned staging buffers (cudaMallocHost). Compiled only with a Kokkos built with
// CUDA (PARTRAIN_CUDA_COPIER); never run on the build machines, which have no GPU.
#include <cuda_runtime.h>

#include <string>

#include "partrain/collectives/staged_communicator.hpp"
#include "partrain/core/error.hpp"

namespace partrain::coll {
namespace {
void check(cudaError_t e, const char* what, std::int64_t bytes) {
  if (e != cudaSuccess)
    throw RuntimeError(std::string(what) + " of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(e));
}

class CudaCopier : public DeviceCopier {
 public:
  void to_host(void* host, const void* device, std::int64_t bytes) override {
    if (bytes > 0) check(cudaMemcpy(host, device, std::size_t(bytes), cudaMemcpyDeviceToHost), "cudaMemcpy to host", bytes);
  }
  void to_device(void* device, const void* host, std::int64_t bytes) override {
    if (bytes > 0) check(cudaMemcpy(device, host, std::size_t(bytes), cudaMemcpyHostToDevice), "cudaMemcpy to device", bytes);
  }
  void* allocate_host(std::int64_t bytes) override {
    void* p = nullptr;
    check(cudaMallocHost(&p, std::size_t(bytes)), "cudaMallocHost (a staging buffer)", bytes);
    return p;
  }
  void free_host(void* p) override { cudaFreeHost(p); }
  const char* name() const override { return "cudaMemcpy"; }
};
}  // namespace

std::unique_ptr<DeviceCopier> cuda_copier() { return std::make_unique<CudaCopier>(); }

}  // namespace partrain::coll
