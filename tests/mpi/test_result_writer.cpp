// The result writer gathers every rank's series into [S, R] datasets: time_s[s, r] must be rank r's step s (a
// rank-major buffer written without its transpose would put rank 0's steps 0 and 1 in row 0). Every rank writes a
// pattern that says who wrote it, and rank 0 reads the file back.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>

#include "partrain/collectives/wait.hpp"
#include "partrain/io/result_writer.hpp"

using namespace partrain;

namespace {
std::vector<double> read(hid_t f, const char* name, std::vector<hsize_t>& dims) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  dims.assign(std::size_t(H5Sget_simple_extent_ndims(s)), 0);
  H5Sget_simple_extent_dims(s, dims.data(), nullptr);
  hsize_t n = 1;
  for (auto x : dims) n *= x;
  std::vector<double> v(n);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Sclose(s);
  H5Dclose(d);
  return v;
}
}  // namespace

TEST(ResultWriter, StepByRankLayoutAndPerRankColumns) {
  int rank = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  const int S = 5;
  io::RankRecord rec;
  for (int s = 0; s < S; ++s) {
    rec.time_s.push_back(1000.0 * rank + s);
    rec.phases["forward"].push_back(-(1000.0 * rank + s));
  }
  rec.memory.peak[0] = 100 + rank;
  rec.rss_peak_bytes = 7000 + rank;
  rec.comm[coll::Op::Allreduce].bytes_sent = 50 + rank;
  rec.comm[coll::Op::Allreduce].calls = 1;
  io::RunInfo info;
  char name[64];
  int pid = getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::snprintf(name, sizeof name, "result_writer_test_%d.h5", pid);
  info.path = name;
  info.app = "test";
  info.strategy = "none";
  info.model = "none";
  info.loss = std::vector<double>(S, 1.0);
  io::Provenance prov = io::collect_provenance(MPI_COMM_WORLD, 0, nullptr);
  io::write_result(MPI_COMM_WORLD, prov, info, rec);
  coll::barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    hid_t f = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    std::vector<hsize_t> dims;
    const auto t = read(f, "/steps/time_s", dims);
    ASSERT_EQ(dims, (std::vector<hsize_t>{hsize_t(S), hsize_t(n)}));
    for (int s = 0; s < S; ++s)
      for (int r = 0; r < n; ++r) EXPECT_EQ(t[std::size_t(s * n + r)], 1000.0 * r + s) << "time_s[" << s << ", " << r << "]";
    const auto fw = read(f, "/steps/phases/forward_s", dims);
    ASSERT_EQ(dims, (std::vector<hsize_t>{hsize_t(S), hsize_t(n)}));
    for (int s = 0; s < S; ++s)
      for (int r = 0; r < n; ++r) EXPECT_EQ(fw[std::size_t(s * n + r)], -(1000.0 * r + s));
    const auto p = read(f, "/memory/params_bytes", dims), rss = read(f, "/memory/rss_peak_bytes", dims);
    const auto sent = read(f, "/comm/allreduce/bytes_sent", dims);
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(p[std::size_t(r)], 100.0 + r);
      EXPECT_EQ(rss[std::size_t(r)], 7000.0 + r);
      EXPECT_EQ(sent[std::size_t(r)], 50.0 + r);
    }
    H5Fclose(f);
    std::remove(name);
  }
}
