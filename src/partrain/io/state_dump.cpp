#include "partrain/io/state_dump.hpp"

#include "partrain/io/h5.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"

namespace partrain::io {

template <class T>
void write_state_dump(const StateDumpInfo& info, const std::vector<NamedTensor>& params,
                      const std::vector<NamedTensor>& grads, const models::Batch<T>& batch,
                      std::int64_t rows_per_sample, double loss) {
  using W = master_t<T>;  // a 16-bit run writes fp32: its master weights, its gradients and inputs widened exactly
  H5Writer w(info.path, info.overwrite);
  w.attr(w.root(), "model", info.model);
  w.attr(w.root(), "config_toml", info.config_toml);
  w.attr(w.root(), "dtype", std::string(sizeof(W) == 4 ? "float32" : "float64"));
  w.attr(w.root(), "precision", precision_name<T>());
  w.scalar<double>(w.root(), "loss", loss, {"nats", "mean cross-entropy over the global batch, before this step's update"});

  hid_t g = w.group("batch");
  const hsize_t S = hsize_t(batch.samples);
  if (batch.features.size() > 0) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.features);
    std::vector<W> v(h.data(), h.data() + h.size());
    w.dataset<W>(g, "inputs", v.data(), {S, hsize_t(batch.features.extent(1))},
                 {"1", "input features of the global batch [samples, d0]"});
  } else {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.tokens);
    w.dataset<int>(g, "inputs", h.data(), {S, hsize_t(batch.tokens.extent(0)) / S},
                   {"1", "token ids of the global batch [sequences, T] (sparse MLP without dense features: its ids)"});
  }
  if (batch.features.size() > 0 && batch.tokens.size() > 0) {  // the sparse MLP: dense features and embedding ids
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.tokens);
    w.dataset<int>(g, "ids", h.data(), {S, hsize_t(batch.tokens.extent(0)) / S},
                   {"1", "embedding-bag ids of the global batch [samples, tables x bag], table by table"});
  }
  if (batch.lengths.size() > 0) {  // NMT: the decoder inputs and every sentence's length
    auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.dec_tokens);
    w.dataset<int>(g, "decoder_inputs", hd.data(), {S, hsize_t(rows_per_sample)},
                   {"1", "decoder input tokens [sentences, S]: BOS (1), then the target shifted right; 0 is padding"});
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.lengths);
    w.dataset<int>(g, "lengths", hl.data(), {S}, {"1", "real length of every sentence (the rest is padding)"});
  }
  auto ht = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.targets);
  if (rows_per_sample == 1) w.dataset<int>(g, "targets", ht.data(), {S}, {"1", "class label of every sample"});
  else w.dataset<int>(g, "targets", ht.data(), {S, hsize_t(rows_per_sample)}, {"1", "next token after every position"});

  auto write_all = [&](hid_t grp, const std::vector<NamedTensor>& ts, const char* what) {
    for (const auto& t : ts) {
      std::vector<W> v(t.values.begin(), t.values.end());
      w.dataset<W>(grp, t.name, v.data(), std::vector<hsize_t>(t.shape.begin(), t.shape.end()),
                   {"1", std::string(what) + t.name + " (PyTorch name and shape)"});
    }
  };
  write_all(w.group("params"), params, "parameter ");
  write_all(w.group("grads"), grads, "gradient of the mean loss with respect to ");
  w.commit();
}

std::vector<NamedTensor> gather_named_tensors(MPI_Comm comm, const std::vector<NamedTensor>& mine, int root) {
  int rank = 0, n = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &n);
  // Packed as doubles: [name length, name characters…, rank of shape, shape…, values…] per tensor.
  std::vector<double> packed;
  for (const auto& t : mine) {
    packed.push_back(double(t.name.size()));
    for (char ch : t.name) packed.push_back(double(static_cast<unsigned char>(ch)));
    packed.push_back(double(t.shape.size()));
    for (auto d : t.shape) packed.push_back(double(d));
    packed.insert(packed.end(), t.values.begin(), t.values.end());
  }
  int count = int(packed.size());
  std::vector<int> counts(static_cast<std::size_t>(n)), displs(static_cast<std::size_t>(n));
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Igather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm, &req));
  coll::wait(req);
  std::vector<double> all;
  if (rank == root) {
    for (int r = 1; r < n; ++r) displs[std::size_t(r)] = displs[std::size_t(r) - 1] + counts[std::size_t(r) - 1];
    all.resize(std::size_t(displs.back() + counts.back()));
  }
  PARTRAIN_MPI_CHECK(MPI_Igatherv(packed.data(), count, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE,
                                  root, comm, &req));
  coll::wait(req);
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < all.size();) {
    NamedTensor t;
    const auto len = std::size_t(all[i++]);
    for (std::size_t k = 0; k < len; ++k) t.name += char(int(all[i++]));
    const auto dims = std::size_t(all[i++]);
    std::int64_t size = 1;
    for (std::size_t k = 0; k < dims; ++k) {
      t.shape.push_back(std::int64_t(all[i++]));
      size *= t.shape.back();
    }
    t.values.assign(all.begin() + std::ptrdiff_t(i), all.begin() + std::ptrdiff_t(i) + size);
    i += std::size_t(size);
    out.push_back(std::move(t));
  }
  return out;
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
template void write_state_dump<bf16>(const StateDumpInfo&, const std::vector<NamedTensor>&,
                                     const std::vector<NamedTensor>&, const models::Batch<bf16>&, std::int64_t, double);
template void write_state_dump<fp16>(const StateDumpInfo&, const std::vector<NamedTensor>&,
                                     const std::vector<NamedTensor>&, const models::Batch<fp16>&, std::int64_t, double);
template std::vector<NamedTensor> named_tensors<bf16>(const models::ParamStore<bf16>&, bool);
template std::vector<NamedTensor> named_tensors<fp16>(const models::ParamStore<fp16>&, bool);
template std::vector<NamedTensor> named_tensors<float>(const models::ParamStore<float>&, bool);
template std::vector<NamedTensor> named_tensors<double>(const models::ParamStore<double>&, bool);
template void write_state_dump<float>(const StateDumpInfo&, const models::ParamStore<float>&,
                                      const models::Batch<float>&, std::int64_t, double);
template void write_state_dump<double>(const StateDumpInfo&, const models::ParamStore<double>&,
                                       const models::Batch<double>&, std::int64_t, double);

}  // namespace partrain::io
