#include "partrain/parallel/state.hpp"

#include "partrain/core/error.hpp"

namespace partrain::parallel {
std::vector<Slab> slabs_of(const models::ParamInfo& p) {
  const auto& sh = p.shard;
  const auto& G = sh.global_shape;
  std::vector<Slab> out;
  if (!sh.sharded()) {
    std::vector<std::int64_t> zero(G.size(), 0);
    out.push_back({zero, G, 0, p.size});
    return out;
  }
  PARTRAIN_REQUIRE(G.size() <= 2, "checkpoints of sharded tensors of more than two dimensions: " + p.name);
  if (sh.dim == 1) {  // a block of columns: every row
    const std::int64_t lc = p.shape[1];
    out.push_back({{0, sh.index * lc}, {G[0], lc}, 0, p.size});
    return out;
  }
  // Rows: `sections` blocks (the fused qkv weight: q, k, v), each of rows/sections/parts rows.
  const std::int64_t per = p.shape[0] / sh.sections, cols = G.size() > 1 ? G[1] : 1;
  for (int s = 0; s < sh.sections; ++s) {
    const std::int64_t row0 = std::int64_t(s) * (G[0] / sh.sections) + std::int64_t(sh.index) * per;
    Slab sl;
    sl.start = G.size() > 1 ? std::vector<std::int64_t>{row0, 0} : std::vector<std::int64_t>{row0};
    sl.count = G.size() > 1 ? std::vector<std::int64_t>{per, cols} : std::vector<std::int64_t>{per};
    sl.local = std::int64_t(s) * per * cols;
    sl.n = per * cols;
    out.push_back(sl);
  }
  return out;
}

std::vector<io::CheckpointTensor> state_tensors(const models::ModelSpec& spec, const models::OptimizerConfig& opt) {
  auto m = models::make_layers<double>(spec);  // declarations only
  m->build(0, false, false);
  std::vector<std::string> groups = {"params"};
  if ((opt.kind != "sgd" && opt.kind != "adagrad") || opt.momentum > 0) groups.push_back("optim/m");
  if (opt.kind != "sgd") groups.push_back("optim/v");
  std::vector<io::CheckpointTensor> out;
  for (const auto& g : groups)
    for (const auto& p : m->params().infos()) out.push_back({g + "/" + p.name, p.shard.global_shape});
  return out;
}

template <class T>
std::vector<io::TensorPart> StateIo<T>::parts(bool writer) const {
  std::vector<io::TensorPart> out;
  std::vector<T> tmp;
  for (const auto& pc : pieces_) {
    if (writer ? !pc.write : !pc.read) continue;
    io::TensorPart part = pc.part;
    if (writer) {
      tmp.resize(std::size_t(pc.n));
      buffers_[std::size_t(pc.buffer)].get(pc.offset, pc.n, tmp.data());
      part.values.assign(tmp.begin(), tmp.end());
    }
    out.push_back(std::move(part));
  }
  return out;
}

template <class T>
void StateIo<T>::restore(const std::vector<io::TensorPart>& read) const {
  std::size_t k = 0;
  std::vector<T> tmp;
  for (const auto& pc : pieces_) {
    if (!pc.read) continue;
    PARTRAIN_REQUIRE(k < read.size() && read[k].path == pc.part.path, "checkpoint parts out of order");
    tmp.assign(read[k].values.begin(), read[k].values.end());
    buffers_[std::size_t(pc.buffer)].set(pc.offset, pc.n, tmp.data());
    ++k;
  }
}

template class StateIo<float>;
template class StateIo<double>;

}  // namespace partrain::parallel
