// Where a replica's units live on its k model-parallel ranks (GNMT's layer per device, Wu et al. 2016 §3):
//   encoder layer i (0 … L_e−1) on rank ⌊i·k/L_e⌋, decoder layer i on rank ⌊i·k/L_d⌋ (contiguous groups; every
//   rank gets at least one of each, so k ≤ L_e and k ≤ L_d); the bidirectional first layer's backward direction on
//   the next rank after its forward direction (k ≥ 2), so the two directions run at once; the source embedding
//   with the forward direction, the attention with the bottom decoder layer; the target embedding and the
//   generator (softmax) sharded by vocabulary over all k ranks (V/k words each).
// Units, in the forward's global order: bi.fwd, bi.bwd, enc 1 … L_e−1, dec 0, attention, dec 1 … L_d−1.
#pragma once

#include <string>
#include <vector>

#include "partrain/models/nmt.hpp"

namespace partrain::parallel::nmt {

enum class UnitKind { BiFwd, BiBwd, Enc, Dec, Attention };

struct Unit {
  UnitKind kind;
  int index = 0;  ///< the encoder / decoder layer index (0 for the bi directions and the attention)
  int rank = 0;
  std::string name() const;  ///< "encoder.bi.fwd", "encoder.layers.2", "decoder.layers.0", "attention"
};

class Placement {
 public:
  /// InputError (naming nmt.model_parallel) when a side has fewer layers than k or the vocabulary does not divide.
  Placement(const models::NmtConfig& cfg, int k);
  int k() const { return k_; }
  const std::vector<Unit>& units() const { return units_; }  ///< global forward order
  int rank_of_enc(int i) const { return enc_[std::size_t(i)]; }
  int rank_of_dec(int i) const { return dec_[std::size_t(i)]; }
  int bi_rank(int direction) const { return direction == 0 ? bi_fwd_ : bi_bwd_; }
  int src_rank() const { return bi_fwd_; }
  int attention_rank() const { return dec_[0]; }
  /// "rank 0: encoder.bi.fwd, encoder.layers.1, decoder.layers.0, attention | rank 1: …"
  std::string describe() const;

 private:
  int k_, bi_fwd_ = 0, bi_bwd_ = 0;
  std::vector<int> enc_, dec_;
  std::vector<Unit> units_;
};

}  // namespace partrain::parallel::nmt
