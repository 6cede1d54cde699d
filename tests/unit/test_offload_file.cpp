// ZeRO's file offload: stream() visits every chunk of every slab once with the file's values and writes back what
// the chunk body changed; a missing, non-directory, unwritable or too small directory is an InputError naming it;
// a file truncated under the stream is a short-read error and a full disk a write error — never a silent update.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "partrain/core/error.hpp"
#include "partrain/parallel/zero/offload_file.hpp"

using namespace partrain;
using partrain::parallel::zero::OffloadFile;

namespace {
std::string temp_dir() {
  char tmpl[] = "/tmp/partrain-offload-XXXXXX";
  return mkdtemp(tmpl);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(OffloadFile, StreamsEveryChunkThroughTwoSlots) {
  const auto dir = temp_dir();
  const std::int64_t n = 5000;  // not a multiple of the 1024-element (4 KiB) O_DIRECT blocks
  {
    OffloadFile<float> f(dir, 0, n, 3, 3 * 2 * 1024 * sizeof(float));  // 1024-element chunks: 5 of them
    EXPECT_EQ(f.chunk_elements(), 1024);
    std::vector<float> init(n);
    for (int s = 0; s < 3; ++s) {
      for (std::int64_t i = 0; i < n; ++i) init[std::size_t(i)] = float(1000 * s + i);
      f.write(s, 0, n, init.data());
    }
    for (int pass = 1; pass <= 2; ++pass) {
      std::int64_t seen = 0;
      f.stream([&](std::int64_t a, std::int64_t b, float* const* slabs) {
        EXPECT_EQ(a, seen);
        seen = b;
        for (std::int64_t i = a; i < b; ++i) {
          for (int s = 0; s < 3; ++s) ASSERT_EQ(slabs[s][i - a], float(1000 * s + i + (pass - 1) * (s + 1)));
          for (int s = 0; s < 3; ++s) slabs[s][i - a] += float(s + 1);
        }
      });
      EXPECT_EQ(seen, n);
    }
    std::vector<float> back(n);
    f.read(2, 0, n, back.data());
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(back[std::size_t(i)], float(2000 + i + 6));
    EXPECT_GE(f.bytes_read(), 2 * 3 * n * std::int64_t(sizeof(float)));
    std::printf("# offload file %s: O_DIRECT %s\n", f.path().c_str(), f.direct() ? "yes" : "no (buffered)");
    EXPECT_GE(f.bytes_written(), 2 * 3 * n * std::int64_t(sizeof(float)));
  }
  EXPECT_EQ(std::system(("rmdir " + dir).c_str()), 0) << "the state file is removed";
}

TEST(OffloadFile, ATruncatedFileIsAShortRead) {
  const auto dir = temp_dir();
  {
    OffloadFile<float> f(dir, 0, 4096, 2, 2 * 2 * 256 * sizeof(float));
    ASSERT_EQ(truncate(f.path().c_str(), 1000), 0);
    const auto msg = error_of([&] { f.stream([](std::int64_t, std::int64_t, float* const*) {}); });
    EXPECT_NE(msg.find("short read"), std::string::npos) << msg;
    EXPECT_NE(msg.find(f.path()), std::string::npos) << msg;
  }
  rmdir(dir.c_str());
}

TEST(OffloadFile, DirectoryChecksNameTheKey) {
  const auto dir = temp_dir();
  EXPECT_EQ(error_of([&] { OffloadFile<float>::check_directory("zero.offload_dir", dir + "/nope", 1); }),
            "zero.offload_dir = \"" + dir + "/nope\": does not exist");
  std::ofstream(dir + "/file") << "x";
  EXPECT_EQ(error_of([&] { OffloadFile<float>::check_directory("zero.offload_dir", dir + "/file", 1); }),
            "zero.offload_dir = \"" + dir + "/file\": is not a directory");
  EXPECT_NE(error_of([&] { OffloadFile<float>::check_directory("zero.offload_dir", "/proc", 1); }).find("is not writable"),
            std::string::npos);
  EXPECT_NE(error_of([&] { OffloadFile<float>::check_directory("zero.offload_dir", dir, std::int64_t(1) << 60); })
                .find("bytes free; the offloaded state needs"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { OffloadFile<float>::check_directory("zero.offload_dir", dir, 1); }), "");
  std::remove((dir + "/file").c_str());
  rmdir(dir.c_str());
}

TEST(OffloadFile, AFullDiskIsAnError) {
  const auto dir = temp_dir();
  if (geteuid() != 0 || mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k") != 0) {
    rmdir(dir.c_str());
    GTEST_SKIP() << "needs root to mount a 64 KiB tmpfs";
  }
  const auto msg = error_of([&] { OffloadFile<float> f(dir, 0, 1 << 20, 2, 1 << 20); });
  EXPECT_NE(msg.find("No space left on device"), std::string::npos) << msg;
  umount(dir.c_str());
  rmdir(dir.c_str());
}
