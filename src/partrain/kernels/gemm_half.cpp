// 16-bit gemms with fp32 accumulation (kernels/gemm.hpp): C = alpha·op(A)·op(B) + beta·C, one rounding of C.
//   CUDA:  cublasGemmEx, 16-bit A, B, C, CUBLAS_COMPUTE_32F (row-major C computed as the column-major Cᵀ = Bᵀ·Aᵀ).
//   host:  oneDNN's matmul primitive (row-major, transposes as strides; alpha an output scale, beta a sum post-op
//          that reads the 16-bit C), where this oneDNN has a kernel for the type on this CPU (bf16 on AVX-512
//          cores; fp16 not in oneDNN 2.6); otherwise fp32 copies of A, B and C, sgemm, and C rounded back. Which
//          one runs is decided once per type and reported by half_gemm_kernel().
#include "partrain/kernels/gemm.hpp"

#include <map>
#include <mutex>
#include <tuple>

#include "partrain/core/error.hpp"

#if defined(KOKKOS_ENABLE_CUDA)
#include <cublas_v2.h>
#elif defined(PARTRAIN_HAVE_ONEDNN)
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace partrain::kernels {
namespace {

/// The fallback: fp32 copies, the fp32 gemm, one rounding of C. The copies are allocated per call ("act/" memory:
/// what this path costs).
template <class H>
void gemm_converted(char ta, char tb, float alpha, const View2<H>& A, const View2<H>& B, float beta, const View2<H>& C) {
  auto widen = [](const View2<H>& h, const char* label) {
    View2<float> f(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), h.extent(0), h.extent(1));
    const H* src = h.data();
    float* dst = f.data();
    Kokkos::parallel_for("partrain::gemm_half::widen", Kokkos::RangePolicy<ExecSpace>(0, std::int64_t(h.size())),
                         KOKKOS_LAMBDA(std::int64_t i) { dst[i] = float(src[i]); });
    return f;
  };
  auto a = widen(A, "act/gemm.fp32_copy_a"), b = widen(B, "act/gemm.fp32_copy_b");
  auto c = beta == 0.0f ? View2<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("act/gemm.fp32_copy_c")),
                                       C.extent(0), C.extent(1))
                        : widen(C, "act/gemm.fp32_copy_c");
  const char sa[2] = {ta, '\0'}, sb[2] = {tb, '\0'};
  KokkosBlas::gemm(sa, sb, alpha, a, b, beta, c);
  H* out = C.data();
  const float* in = c.data();
  Kokkos::parallel_for("partrain::gemm_half::narrow", Kokkos::RangePolicy<ExecSpace>(0, std::int64_t(C.size())),
                       KOKKOS_LAMBDA(std::int64_t i) { out[i] = in[i]; });
}

#if defined(KOKKOS_ENABLE_CUDA)

template <class H>
constexpr cudaDataType_t cuda_type() {
  return std::is_same_v<H, bf16> ? CUDA_R_16BF : CUDA_R_16F;
}

cublasHandle_t cublas() {
  static cublasHandle_t h = [] {
    cublasHandle_t x = nullptr;
    PARTRAIN_REQUIRE(cublasCreate(&x) == CUBLAS_STATUS_SUCCESS, "cublasCreate failed");
    return x;
  }();
  return h;
}

template <class H>
void gemm_device(char ta, char tb, float alpha, const View2<H>& A, const View2<H>& B, float beta, const View2<H>& C) {
  const int M = int(C.extent(0)), N = int(C.extent(1)), K = int(ta == 'N' ? A.extent(1) : A.extent(0));
  const cublasOperation_t opa = ta == 'N' ? CUBLAS_OP_N : CUBLAS_OP_T, opb = tb == 'N' ? CUBLAS_OP_N : CUBLAS_OP_T;
  // Row-major C[M, N] = op(A)·op(B) is column-major Cᵀ[N, M] = op(B)ᵀ·op(A)ᵀ over the same memory.
  const auto st = cublasGemmEx(cublas(), opb, opa, N, M, K, &alpha, B.data(), cuda_type<H>(), int(B.extent(1)),
                               A.data(), cuda_type<H>(), int(A.extent(1)), &beta, C.data(), cuda_type<H>(), N,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  PARTRAIN_REQUIRE(st == CUBLAS_STATUS_SUCCESS, "cublasGemmEx failed (status " + std::to_string(int(st)) + ")");
}

#elif defined(PARTRAIN_HAVE_ONEDNN)

template <class H>
constexpr dnnl::memory::data_type dnnl_type() {
  return std::is_same_v<H, bf16> ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f16;
}

/// The CPU ISA oneDNN dispatches to ("avx512_core_amx", …).
std::string dnnl_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx2: return "avx2";
    default: return "other";
  }
}

/// oneDNN runs its primitives on OpenMP threads, as many as the cores unless OMP_NUM_THREADS says otherwise: one
/// rank per core oversubscribed the machine (a bf16 NMT test ran 20× slower without scripts/env.sh). Where the user
/// set no OMP_NUM_THREADS, the gemm takes the threads of the rank's own execution space (one with Kokkos Serial).
/// libgomp comes with libdnnl: its omp_set_num_threads is looked up, not linked.
void limit_dnnl_threads() {
  if (std::getenv("OMP_NUM_THREADS")) return;
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads")))
    set(std::max(1, int(Kokkos::DefaultHostExecutionSpace().concurrency())));
}

struct Dnnl {
  bool threads_set = (limit_dnnl_threads(), true);  // before the engine exists
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  using Key = std::tuple<int, char, char, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                         std::int64_t, float, float>;
  std::map<Key, dnnl::matmul> cache;  // primitive creation costs more than a small gemm
  std::mutex mutex;
  static Dnnl& get() {
    static Dnnl d;
    return d;
  }
};

template <class H>
dnnl::matmul matmul_for(char ta, char tb, std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t lda,
                        std::int64_t ldb, std::int64_t ldc, float alpha, float beta) {
  using md = dnnl::memory::desc;
  auto& d = Dnnl::get();
  const Dnnl::Key key{std::is_same_v<H, bf16> ? 0 : 1, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta};
  std::lock_guard<std::mutex> lock(d.mutex);
  auto it = d.cache.find(key);
  if (it != d.cache.end()) return it->second;
  const auto t = dnnl_type<H>();
  const md a({M, K}, t, ta == 'N' ? dnnl::memory::dims{lda, 1} : dnnl::memory::dims{1, lda});
  const md b({K, N}, t, tb == 'N' ? dnnl::memory::dims{ldb, 1} : dnnl::memory::dims{1, ldb});
  const md c({M, N}, t, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, d.engine);
  dnnl::matmul p(pd);
  d.cache.emplace(key, p);
  return p;
}

/// Whether oneDNN runs this type's matmul on this CPU (asked once: a small problem's primitive is created).
template <class H>
bool dnnl_supports() {
  static const bool ok = [] {
    try {
      matmul_for<H>('N', 'N', 4, 4, 4, 4, 4, 4, 1.0f, 0.0f);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

template <class H>
void gemm_dnnl(char ta, char tb, float alpha, const View2<H>& A, const View2<H>& B, float beta, const View2<H>& C) {
  const std::int64_t M = C.extent(0), N = C.extent(1), K = ta == 'N' ? A.extent(1) : A.extent(0);
  auto p = matmul_for<H>(ta, tb, M, N, K, A.extent(1), B.extent(1), C.extent(1), alpha, beta);
  auto& d = Dnnl::get();
  const auto t = dnnl_type<H>();
  using md = dnnl::memory::desc;
  dnnl::memory a(md({M, K}, t, ta == 'N' ? dnnl::memory::dims{std::int64_t(A.extent(1)), 1}
                                         : dnnl::memory::dims{1, std::int64_t(A.extent(1))}),
                 d.engine, const_cast<H*>(A.data()));
  dnnl::memory b(md({K, N}, t, tb == 'N' ? dnnl::memory::dims{std::int64_t(B.extent(1)), 1}
                                         : dnnl::memory::dims{1, std::int64_t(B.extent(1))}),
                 d.engine, const_cast<H*>(B.data()));
  dnnl::memory c(md({M, N}, t, dnnl::memory::dims{N, 1}), d.engine, C.data());
  p.execute(d.stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  d.stream.wait();
}

#endif

template <class H>
void gemm_any(char ta, char tb, float alpha, const View2<H>& A, const View2<H>& B, float beta, const View2<H>& C) {
  PARTRAIN_REQUIRE(C.span_is_contiguous() && A.span_is_contiguous() && B.span_is_contiguous(),
                   "gemm_half on a non-contiguous view");
#if defined(KOKKOS_ENABLE_CUDA)
  gemm_device(ta, tb, alpha, A, B, beta, C);
#elif defined(PARTRAIN_HAVE_ONEDNN)
  if (dnnl_supports<H>()) gemm_dnnl(ta, tb, alpha, A, B, beta, C);
  else gemm_converted(ta, tb, alpha, A, B, beta, C);
#else
  gemm_converted(ta, tb, alpha, A, B, beta, C);
#endif
}

}  // namespace

void gemm_half(char ta, char tb, float alpha, const View2<bf16>& A, const View2<bf16>& B, float beta,
               const View2<bf16>& C) {
  gemm_any(ta, tb, alpha, A, B, beta, C);
}
void gemm_half(char ta, char tb, float alpha, const View2<fp16>& A, const View2<fp16>& B, float beta,
               const View2<fp16>& C) {
  gemm_any(ta, tb, alpha, A, B, beta, C);
}

std::string half_gemm_kernel(const std::string& precision) {
#if defined(KOKKOS_ENABLE_CUDA)
  return "cuBLAS cublasGemmEx (" + precision + " in and out, CUBLAS_COMPUTE_32F)";
#elif defined(PARTRAIN_HAVE_ONEDNN)
  const auto v = dnnl::version();
  const std::string dnnl_name = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                                std::to_string(v->patch) + " matmul (ISA " + dnnl_isa() + ")";
  const bool ok = precision == "bf16" ? dnnl_supports<bf16>() : dnnl_supports<fp16>();
  if (ok) return dnnl_name;
  return "fp32 sgemm on converted copies (" + dnnl_name + " has no " + precision + " kernel for this CPU)";
#else
  return "fp32 sgemm on converted copies (partrain built without oneDNN)";
#endif
}

}  // namespace partrain::kernels
