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
  w.scalar<double>(w.root(), "loss", loss, {"nats", "mean cross-entropy over the global batch, before this step's update"});

  hid_t g = w.group("batch");
  const hsize_t S = hsize_t(batch.samples);
  if (batch.features.size() > 0) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.features);
    w.dataset<T>(g, "inputs", h.data(), {S, hsize_t(batch.features.extent(1))},
                 {"1", "input features of the global batch [samples, d0]"});
  } else {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.tokens);
    w.dataset<int>(g, "inputs", h.data(), {S, hsize_t(rows_per_sample)},
                   {"1", "token ids of the global batch [sequences, T]"});
  }
  auto ht = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.targets);
  if (rows_per_sample == 1) w.dataset<int>(g, "targets", ht.data(), {S}, {"1", "class label of every sample"});
  else w.dataset<int>(g, "targets", ht.data(), {S, hsize_t(rows_per_sample)}, {"1", "next token after every position"});

  auto write_all = [&](hid_t grp, const std::vector<NamedTensor>& ts, const char* what) {
    for (const auto& t : ts) {
      std::vector<T> v(t.values.begin(), t.values.end());
      w.dataset<T>(grp, t.name, v.data(), std::vector<hsize_t>(t.shape.begin(), t.shape.end()),
                   {"1", std::string(what) + t.name + " (PyTorch name and shape)"});
    }
  };
  write_all(w.group("params"), params, "parameter ");
  write_all(w.group("grads"), grads, "gradient of the mean loss with respect to ");
  w.commit();
}

template <class T>
std::vector<NamedTensor> named_tensors(const models::ParamStore<T>& ps, bool grads) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grads ? ps.grads() : ps.params());
  std::vector<NamedTensor> out;
  for (const auto& p : ps.infos())
    out.push_back({p.name, p.shape, std::vector<double>(h.data() + p.offset, h.data() + p.offset + p.size)});
  return out;
}

template <class T>
void write_state_dump(const StateDumpInfo& info, const models::ParamStore<T>& ps, const models::Batch<T>& batch,
                      std::int64_t rows_per_sample, double loss) {
  write_state_dump(info, named_tensors(ps, false), named_tensors(ps, true), batch, rows_per_sample, loss);
}

template void write_state_dump<float>(const StateDumpInfo&, const std::vector<NamedTensor>&,
                                      const std::vector<NamedTensor>&, const models::Batch<float>&, std::int64_t,
                                      double);
template void write_state_dump<double>(const StateDumpInfo&, const std::vector<NamedTensor>&,
                                       const std::vector<NamedTensor>&, const models::Batch<double>&, std::int64_t,
                                       double);
template std::vector<NamedTensor> named_tensors<float>(const models::ParamStore<float>&, bool);
template std::vector<NamedTensor> named_tensors<double>(const models::ParamStore<double>&, bool);
template void write_state_dump<float>(const StateDumpInfo&, const models::ParamStore<float>&,
                                      const models::Batch<float>&, std::int64_t, double);
template void write_state_dump<double>(const StateDumpInfo&, const models::ParamStore<double>&,
                                       const models::Batch<double>&, std::int64_t, double);

}  // namespace partrain::io
