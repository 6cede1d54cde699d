#include "partrain/io/state_dump.hpp"

#include "partrain/io/h5.hpp"

namespace partrain::io {

template <class T>
void write_state_dump(const StateDumpInfo& info, const models::ParamStore<T>& params,
                      const models::Batch<T>& batch, std::int64_t rows_per_sample, double loss) {
  H5Writer w(info.path, info.overwrite);
  w.attr(w.root(), "model", info.model);
  w.attr(w.root(), "config_toml", info.config_toml);
  w.attr(w.root(), "dtype", std::string(sizeof(T) == 4 ? "float32" : "float64"));
  w.scalar<double>(w.root(), "loss", loss);

  hid_t g = w.group("batch");
  const hsize_t S = hsize_t(batch.samples);
  if (batch.features.size() > 0) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.features);
    w.dataset<T>(g, "inputs", h.data(), {S, hsize_t(batch.features.extent(1))});
  } else {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.tokens);
    w.dataset<int>(g, "inputs", h.data(), {S, hsize_t(rows_per_sample)});
  }
  auto ht = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.targets);
  if (rows_per_sample == 1) w.dataset<int>(g, "targets", ht.data(), {S});
  else w.dataset<int>(g, "targets", ht.data(), {S, hsize_t(rows_per_sample)});

  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params.params());
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params.grads());
  hid_t gp = w.group("params"), gg = w.group("grads");
  for (const auto& p : params.infos()) {
    std::vector<hsize_t> dims(p.shape.begin(), p.shape.end());
    w.dataset<T>(gp, p.name, hp.data() + p.offset, dims);
    w.dataset<T>(gg, p.name, hg.data() + p.offset, dims);
  }
  w.commit();
}

template void write_state_dump<float>(const StateDumpInfo&, const models::ParamStore<float>&,
                                      const models::Batch<float>&, std::int64_t, double);
template void write_state_dump<double>(const StateDumpInfo&, const models::ParamStore<double>&,
                                       const models::Batch<double>&, std::int64_t, double);

}  // namespace partrain::io
