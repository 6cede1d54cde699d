// The HDF5 result file every mini-app writes (DESIGN.md, Results; every field documented in results/README.md).
// Each rank fills a RankRecord with its own series; write_result gathers them to rank 0, which writes one file
// (temporary name, renamed when complete; an existing file only with --overwrite):
//   / attrs                 schema, schema_version, provenance, app, strategy, model, nranks, dp, tp, pp,
//                           config_toml, warmup_steps, and the app's own attributes
//   /steps/loss [S]         /steps/time_s [S,R]       /steps/phases/<phase>_s [S,R]
//   /memory/<category>_bytes [R]                      /memory/rss_peak_bytes [R]
//   /comm/<op>/bytes_sent, bytes_received, calls [R]  (ops with at least one call on some rank)
//   /summary attrs          figures and predicted_<figure> where a model predicts them
#pragma once

#include <mpi.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "partrain/collectives/counters.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/io/provenance.hpp"

namespace partrain::io {

/// This rank's measurements.
struct RankRecord {
  std::vector<double> time_s;                          ///< [S] step times
  std::vector<double> wall_s;                          ///< [S] back-to-back times (empty: not measured)
  std::map<std::string, std::vector<double>> phases;   ///< phase name (without _s) → [S]
  MemorySnapshot memory;
  std::int64_t rss_peak_bytes = 0;
  coll::Counters comm;
};

/// A strategy's own dataset (a pipeline timeline, a staleness histogram), written as given by rank 0.
struct ExtraDataset {
  std::string path;  ///< "/timeline/start_s"
  std::vector<hsize_t> dims;
  std::vector<double> values;
  Meta meta;
};

/// What is the same on every rank.
struct RunInfo {
  std::string path;
  bool overwrite = false;
  std::string app, strategy, model, config_toml;
  int dp = 1, tp = 1, pp = 1;
  std::int64_t warmup_steps = 0;
  std::vector<double> loss;                                   ///< [S]
  std::vector<std::pair<std::string, std::string>> attrs;     ///< extra root attributes
  std::vector<std::pair<std::string, double>> summary;        ///< /summary attributes
  std::vector<ExtraDataset> extra;                            ///< used on rank 0 only
};

/// Description of a step phase for its dataset's attributes (known phases; a generic line otherwise).
std::string phase_description(const std::string& phase);

/// Median of v (0 for an empty v).
double median(std::vector<double> v);

/// Collective over comm: gathers every rank's record to rank 0, which writes the file.
void write_result(MPI_Comm comm, const Provenance& prov, const RunInfo& info, const RankRecord& mine);

}  // namespace partrain::io
