#include "partrain/parallel/nmt/placement.hpp"

#include "partrain/core/error.hpp"

namespace partrain::parallel::nmt {

std::string Unit::name() const {
  switch (kind) {
    case UnitKind::BiFwd: return "encoder.bi.fwd";
    case UnitKind::BiBwd: return "encoder.bi.bwd";
    case UnitKind::Enc: return "encoder.layers." + std::to_string(index);
    case UnitKind::Dec: return "decoder.layers." + std::to_string(index);
    case UnitKind::Attention: return "attention";
  }
  return "?";
}

Placement::Placement(const models::NmtConfig& c, int k) : k_(k) {
  if (c.enc_layers < k)
    input_error("nmt.model_parallel", std::to_string(k),
                "is more than the " + std::to_string(c.enc_layers) + " encoder layers (model.nmt.enc_layers): every "
                "model-parallel rank holds at least one");
  if (c.dec_layers < k)
    input_error("nmt.model_parallel", std::to_string(k),
                "is more than the " + std::to_string(c.dec_layers) + " decoder layers (model.nmt.dec_layers): every "
                "model-parallel rank holds at least one");
  if (c.vocab % k != 0)
    input_error("nmt.model_parallel", std::to_string(k),
                "does not divide the vocabulary model.nmt.vocab = " + std::to_string(c.vocab) +
                    " (the generator and the target embedding are sharded by vocabulary)");
  for (std::int64_t i = 0; i < c.enc_layers; ++i) enc_.push_back(int(i * k / c.enc_layers));
  for (std::int64_t i = 0; i < c.dec_layers; ++i) dec_.push_back(int(i * k / c.dec_layers));
  bi_fwd_ = enc_[0];
  bi_bwd_ = k > 1 ? (enc_[0] + 1) % k : enc_[0];
  units_.push_back({UnitKind::BiFwd, 0, bi_fwd_});
  units_.push_back({UnitKind::BiBwd, 0, bi_bwd_});
  for (std::int64_t i = 1; i < c.enc_layers; ++i) units_.push_back({UnitKind::Enc, int(i), enc_[std::size_t(i)]});
  units_.push_back({UnitKind::Dec, 0, dec_[0]});
  units_.push_back({UnitKind::Attention, 0, dec_[0]});
  for (std::int64_t i = 1; i < c.dec_layers; ++i) units_.push_back({UnitKind::Dec, int(i), dec_[std::size_t(i)]});
}

std::string Placement::describe() const {
  std::string s;
  for (int r = 0; r < k_; ++r) {
    s += (r ? " | rank " : "rank ") + std::to_string(r) + ":";
    if (r == src_rank()) s += " src_embed,";
    for (const auto& u : units_)
      if (u.rank == r) s += " " + u.name() + ",";
    s += " 1/" + std::to_string(k_) + " of tgt_embed and generator";
  }
  return s;
}

}  // namespace partrain::parallel::nmt
