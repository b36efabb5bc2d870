#include "proxy/h2/h2_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace switchyard::proxy::h2 {
namespace {

nghttp2_mem& mem() { return *memory(); }

TEST(H2Memory, BlocksOfEverySizeHoldTheirBytes) {
  std::vector<std::pair<uint8_t*, size_t>> blocks;
  for (size_t size : {0, 1, 47, 48, 49, 100, 1000, 4079, 4080, 4081, 10000, 100000}) {
    auto* p = static_cast<uint8_t*>(mem().malloc(size, nullptr));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t), 0u) << size;
    std::memset(p, static_cast<int>(size & 0xff), size);
    blocks.emplace_back(p, size);
  }
  for (auto [p, size] : blocks) {
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(p[i], static_cast<uint8_t>(size & 0xff)) << size;
    mem().free(p, nullptr);
  }
  mem().free(nullptr, nullptr);
}

TEST(H2Memory, FreedBlocksAreReusedUpToTheBound) {
  if (!pooling()) GTEST_SKIP() << "AddressSanitizer build: every block goes to malloc";
  const size_t before = kept_blocks();
  std::vector<void*> blocks;
  for (size_t i = 0; i < kKeepPerClass + 50; ++i) blocks.push_back(mem().malloc(200, nullptr));
  for (void* p : blocks) mem().free(p, nullptr);
  EXPECT_EQ(kept_blocks(), before + kKeepPerClass);  // the other 50 went back to malloc
  void* again = mem().malloc(150, nullptr);          // the same class (129..256 with its header)
  EXPECT_EQ(kept_blocks(), before + kKeepPerClass - 1);
  EXPECT_EQ(again, blocks[kKeepPerClass - 1]);  // the last one kept, first out
  mem().free(again, nullptr);
  void* large = mem().malloc(8000, nullptr);  // past 4 KiB: never kept
  mem().free(large, nullptr);
  EXPECT_EQ(kept_blocks(), before + kKeepPerClass);
}

TEST(H2Memory, CallocZeroesAndRefusesOverflow) {
  auto* dirty = static_cast<uint8_t*>(mem().malloc(100, nullptr));
  std::memset(dirty, 0xab, 100);
  mem().free(dirty, nullptr);  // kept: calloc may get it back, and must zero it
  auto* p = static_cast<uint8_t*>(mem().calloc(10, 10, nullptr));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 100; ++i) ASSERT_EQ(p[i], 0) << i;
  mem().free(p, nullptr);
  EXPECT_EQ(mem().calloc(SIZE_MAX / 2, 3, nullptr), nullptr);
  EXPECT_EQ(mem().malloc(SIZE_MAX - 8, nullptr), nullptr);
}

TEST(H2Memory, ReallocKeepsTheBytes) {
  auto* p = static_cast<uint8_t*>(mem().realloc(nullptr, 10, nullptr));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 10; ++i) p[i] = static_cast<uint8_t>(i);
  auto* same = static_cast<uint8_t*>(mem().realloc(p, 40, nullptr));  // fits its 64-byte block
  if (pooling()) {
    EXPECT_EQ(same, p);
  }
  auto* grown = static_cast<uint8_t*>(mem().realloc(same, 20000, nullptr));
  ASSERT_NE(grown, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(grown[i], i);
  std::memset(grown + 10, 7, 19990);
  auto* bigger = static_cast<uint8_t*>(mem().realloc(grown, 50000, nullptr));
  ASSERT_NE(bigger, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(bigger[i], i);
  EXPECT_EQ(bigger[19999], 7);
  mem().free(bigger, nullptr);
}

}  // namespace
}  // namespace switchyard::proxy::h2
