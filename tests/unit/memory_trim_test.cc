#include "server/memory_trim.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "metrics/registry.h"

namespace hato::server {
namespace {

// Holes between live blocks (what a burst of logins leaves) are given back:
// the resident size drops, and the trimmer says how much it found free.
TEST(HeapTrimmer, GivesFreedHolesBack) {
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "glibc malloc only";
#else
  constexpr size_t kBlock = 16 * 1024;  // below the mmap threshold: in the arena
  constexpr size_t kBlocks = 4096;      // 64 MiB
  std::vector<std::unique_ptr<char[]> > blocks;
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks.emplace_back(new char[kBlock]);
    for (size_t j = 0; j < kBlock; j += 4096) blocks.back()[j] = 1;  // resident
  }
  // Keep every 64th block: the rest are holes the top-of-heap trim cannot reach.
  for (size_t i = 0; i < kBlocks; ++i) {
    if (i % 64 != 0) blocks[i].reset();
  }
  HeapTrimmer trimmer;
  EXPECT_FALSE(trimmer.Tick(/*min_free=*/uint64_t{1} << 40));  // not enough free: no trim
  EXPECT_EQ(trimmer.trims(), 0u);
  EXPECT_GE(trimmer.free_bytes(), uint64_t{32} << 20);
  uint64_t before = metrics::ResidentBytes();
  EXPECT_TRUE(trimmer.Tick(/*min_free=*/1 << 20));
  EXPECT_EQ(trimmer.trims(), 1u);
  uint64_t after = metrics::ResidentBytes();
  EXPECT_LT(after + (uint64_t{16} << 20), before) << "before " << before << " after " << after;
  EXPECT_GE(trimmer.released_bytes(), uint64_t{16} << 20);
#endif
}

}  // namespace
}  // namespace hato::server
