// --dump-state: the file holds loss, batch, every parameter and gradient under its PyTorch name and shape;
// an existing file is not overwritten unless asked, and a failed write leaves nothing behind.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>

#include "partrain/core/error.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/io/state_dump.hpp"
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
}  // namespace

TEST(StateDump, GptNamesShapesAndValues) {
  ModelSpec ms;
  ms.kind = "gpt";
  ms.gpt = GptConfig{16, 8, 2, 16, 2};
  TrainSpec ts;
  ts.global_batch = 3;
  ts.steps = 2;
  ts.warmup = 0;
  auto m = make_model<float>(ms);
  auto d = make_dataset<float>(ms);
  ReferenceTrainer<float> tr(*m, *d, ts);
  const std::string path = "state_dump_test_" + std::to_string(getpid()) + ".h5";
  double dumped_loss = 0;
  std::vector<double> grads;
  tr.run({}, [&](const Batch<float>& b, double loss) {
    dumped_loss = loss;
    grads = test::host(m->params().grads());
    io::write_state_dump(io::StateDumpInfo{path, false, "gpt", "x = 1"}, m->params(), b, 8, loss);
  });
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  EXPECT_EQ(dims_of(f, "/batch/inputs"), (std::vector<hsize_t>{3, 8}));
  EXPECT_EQ(dims_of(f, "/batch/targets"), (std::vector<hsize_t>{3, 8}));
  EXPECT_EQ(dims_of(f, "/params/wte"), (std::vector<hsize_t>{16, 16}));
  EXPECT_EQ(dims_of(f, "/params/wpe"), (std::vector<hsize_t>{8, 16}));
  EXPECT_EQ(dims_of(f, "/params/blocks.1.attn.qkv.weight"), (std::vector<hsize_t>{48, 16}));
  EXPECT_EQ(dims_of(f, "/grads/blocks.0.mlp.proj.weight"), (std::vector<hsize_t>{16, 64}));
  EXPECT_EQ(dims_of(f, "/params/ln_f.bias"), (std::vector<hsize_t>{16}));
  double loss = 0;
  hid_t dl = H5Dopen2(f, "/loss", H5P_DEFAULT);
  H5Dread(dl, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &loss);
  H5Dclose(dl);
  EXPECT_EQ(loss, dumped_loss);
  const auto& info = m->params().info("wpe");
  std::vector<float> g(info.size);
  hid_t dg = H5Dopen2(f, "/grads/wpe", H5P_DEFAULT);
  H5Dread(dg, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, g.data());
  H5Dclose(dg);
  for (std::int64_t i = 0; i < info.size; ++i) ASSERT_EQ(double(g[i]), grads[info.offset + i]);
  H5Fclose(f);

  EXPECT_THROW(io::check_output_path("--dump-state", path, false), InputError);
  EXPECT_NO_THROW(io::check_output_path("--dump-state", path, true));
  EXPECT_THROW(io::check_output_path("--dump-state", "/nonexistent-dir/x.h5", true), InputError);
  std::remove(path.c_str());
}

TEST(StateDump, WriterLeavesNothingWithoutCommit) {
  const std::string path = "uncommitted_" + std::to_string(getpid()) + ".h5";
  {
    io::H5Writer w(path, false);
    w.scalar<double>(w.root(), "x", 1.0);
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_NE(access((path + ".tmp-" + std::to_string(getpid())).c_str(), F_OK), 0);
}
