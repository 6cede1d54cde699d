#include "partrain/io/state_dump.hpp"

#include "partrain/io/h5.hpp"

namespace partrain::io {

template <class T>
void write_state_dump(const StateDumpInfo& info, const std::vector<NamedTensor>& params,
                      const std::vector<NamedTensor>& grads, const models::Batch<T>& batch,
                      std::int64_t rows_per_sample, double loss) {
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

  auto write_all = [&](hid_t grp, const std::vector<NamedTensor>& ts) {
    for (const auto& t : ts) {
      std::vector<T> v(t.values.begin(), t.values.end());
      w.dataset<T>(grp, t.name, v.data(), std::vector<hsize_t>(t.shape.begin(), t.shape.end()));
    }
  };
  write_all(w.group("params"), params);
  write_all(w.group("grads"), grads);
  w.commit();
}

template <class T>
void write_state_dump(const StateDumpInfo& info, const models::ParamStore<T>& ps, const models::Batch<T>& batch,
                      std::int64_t rows_per_sample, double loss) {
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ps.params());
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ps.grads());
  std::vector<NamedTensor> params, grads;
  for (const auto& p : ps.infos()) {
    params.push_back({p.name, p.shape, std::vector<double>(hp.data() + p.offset, hp.data() + p.offset + p.size)});
    grads.push_back({p.name, p.shape, std::vector<double>(hg.data() + p.offset, hg.data() + p.offset + p.size)});
  }
  write_state_dump(info, params, grads, batch, rows_per_sample, loss);
}

template void write_state_dump<float>(const StateDumpInfo&, const std::vector<NamedTensor>&,
                                      const std::vector<NamedTensor>&, const models::Batch<float>&, std::int64_t,
                                      double);
template void write_state_dump<double>(const StateDumpInfo&, const std::vector<NamedTensor>&,
                                       const std::vector<NamedTensor>&, const models::Batch<double>&, std::int64_t,
                                       double);
template void write_state_dump<float>(const StateDumpInfo&, const models::ParamStore<float>&,
                                      const models::Batch<float>&, std::int64_t, double);
template void write_state_dump<double>(const StateDumpInfo&, const models::ParamStore<double>&,
                                       const models::Batch<double>&, std::int64_t, double);

}  // namespace partrain::io
