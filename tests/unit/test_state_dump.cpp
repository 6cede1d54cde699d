// --dump-state: the file holds loss, batch, every parameter and gradient under its PyTorch name and shape, each equal
// to the tensor in memory (checked against the store itself, so a writer that zeroes a gradient or swaps two
// same-shape names is caught — a dump compared only with another dump would hide it); an existing file is not
// overwritten unless asked, and a failed write leaves nothing behind.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "partrain/core/error.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/io/state_dump.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/models/trainer.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::models;

namespace {
std::vector<hsize_t> dims_of(hid_t f, const std::string& name) {
  hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  if (d < 0) return {999};
  hid_t s = H5Dget_space(d);
  std::vector<hsize_t> dims(H5Sget_simple_extent_ndims(s));
  H5Sget_simple_extent_dims(s, dims.data(), nullptr);
  H5Sclose(s);
  H5Dclose(d);
  return dims;
}

std::vector<double> read_all(hid_t f, const std::string& name) {
  std::vector<hsize_t> dims = dims_of(f, name);
  hsize_t n = 1;
  for (auto x : dims) n *= x;
  std::vector<double> v(n);
  hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d);
  return v;
}

std::set<std::string> members(hid_t f, const std::string& group) {
  std::set<std::string> out;
  hid_t g = H5Gopen2(f, group.c_str(), H5P_DEFAULT);
  H5Literate(
      g, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* o) {
        static_cast<std::set<std::string>*>(o)->insert(name);
        return herr_t(0);
      },
      &out);
  H5Gclose(g);
  return out;
}

/// Trains two steps of `ms`, dumps before the last update, and checks every tensor of the dump against the store.
void dump_equals_store(const ModelSpec& ms) {
  TrainSpec ts;
  ts.global_batch = 3;
  ts.steps = 2;
  ts.warmup = 0;
  auto m = make_model<float>(ms);
  auto d = make_dataset<float>(ms);
  ReferenceTrainer<float> tr(*m, *d, ts);
  const std::string path = "state_dump_test_" + std::to_string(getpid()) + ".h5";
  double dumped_loss = 0;
  std::vector<double> params, grads, inputs, targets;
  tr.run({}, [&](const Batch<float>& b, double loss) {
    dumped_loss = loss;
    params = test::host(m->params().params());
    grads = test::host(m->params().grads());
    inputs = b.features.size() ? test::host(b.features) : test::host(b.tokens);
    targets = test::host(b.targets);
    io::write_state_dump(io::StateDumpInfo{path, false, describe(ms), "x = 1"}, m->params(), b,
                         rows_per_sample(ms), loss);
  });
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  std::set<std::string> names;
  for (const auto& p : m->params().infos()) {
    names.insert(p.name);
    const std::vector<hsize_t> shape(p.shape.begin(), p.shape.end());
    EXPECT_EQ(dims_of(f, "/params/" + p.name), shape) << p.name;
    EXPECT_EQ(dims_of(f, "/grads/" + p.name), shape) << p.name;
    const auto dp = read_all(f, "/params/" + p.name), dg = read_all(f, "/grads/" + p.name);
    ASSERT_EQ(std::int64_t(dp.size()), p.size) << p.name;
    ASSERT_EQ(std::int64_t(dg.size()), p.size) << p.name;
    double gnorm = 0;
    for (std::int64_t i = 0; i < p.size; ++i) {
      ASSERT_EQ(dp[std::size_t(i)], params[std::size_t(p.offset + i)]) << "/params/" << p.name << "[" << i << "]";
      ASSERT_EQ(dg[std::size_t(i)], grads[std::size_t(p.offset + i)]) << "/grads/" << p.name << "[" << i << "]";
      gnorm += dg[std::size_t(i)] * dg[std::size_t(i)];
    }
    EXPECT_GT(gnorm, 0.0) << "every gradient of these models is non-zero after a step: " << p.name;
  }
  EXPECT_EQ(members(f, "/params"), names);
  EXPECT_EQ(members(f, "/grads"), names);
  EXPECT_EQ(read_all(f, "/loss"), std::vector<double>{dumped_loss});
  EXPECT_EQ(read_all(f, "/batch/inputs"), inputs);
  EXPECT_EQ(read_all(f, "/batch/targets"), targets);
  H5Fclose(f);

  EXPECT_THROW(io::check_output_path("--dump-state", path, false), InputError);
  EXPECT_NO_THROW(io::check_output_path("--dump-state", path, true));
  std::remove(path.c_str());
}
}  // namespace

TEST(StateDump, GptTensorsEqualTheStore) {
  ModelSpec ms;
  ms.kind = "gpt";
  ms.gpt = GptConfig{16, 8, 2, 16, 2};
  dump_equals_store(ms);
}

TEST(StateDump, MlpTensorsEqualTheStore) {
  ModelSpec ms;
  ms.kind = "mlp";
  ms.mlp.widths = {8, 12, 6, 4};
  dump_equals_store(ms);
}

TEST(StateDump, GptShapesFollowPyTorch) {
  ModelSpec ms;
  ms.kind = "gpt";
  ms.gpt = GptConfig{16, 8, 2, 16, 2};
  auto m = make_model<float>(ms);
  EXPECT_EQ(m->params().info("wte").shape, (std::vector<std::int64_t>{16, 16}));
  EXPECT_EQ(m->params().info("wpe").shape, (std::vector<std::int64_t>{8, 16}));
  EXPECT_EQ(m->params().info("blocks.1.attn.qkv.weight").shape, (std::vector<std::int64_t>{48, 16}));
  EXPECT_EQ(m->params().info("blocks.0.mlp.proj.weight").shape, (std::vector<std::int64_t>{16, 64}));
  EXPECT_EQ(m->params().info("ln_f.bias").shape, (std::vector<std::int64_t>{16}));
  EXPECT_THROW(io::check_output_path("--dump-state", "/nonexistent-dir/x.h5", true), InputError);
}

TEST(StateDump, WriterLeavesNothingWithoutCommit) {
  const std::string path = "uncommitted_" + std::to_string(getpid()) + ".h5";
  {
    io::H5Writer w(path, false);
    w.scalar<double>(w.root(), "x", 1.0, {"1", "test"});
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_NE(access((path + ".tmp-" + std::to_string(getpid())).c_str(), F_OK), 0);
}
