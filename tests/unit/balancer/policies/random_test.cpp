#include <gtest/gtest.h>

#include "../test_util.h"

namespace switchyard::balancer {
namespace {

using testing::Cluster;
using testing::weights;

testing::Spec seeded(std::vector<uint32_t> w, uint64_t seed) {
  auto s = weights(std::move(w), "random");
  s.seed = seed;
  return s;
}

// Pinned: a fixed seed gives a fixed sequence (the PRNG is deterministic per worker seed).
TEST(Random, PinnedSequenceForSeed) {
  Cluster c(seeded({1, 1, 1}, 42));
  std::string first = c.sequence(12);
  Cluster again(seeded({1, 1, 1}, 42));
  EXPECT_EQ(again.sequence(12), first);
  EXPECT_NE(first.find('a'), std::string::npos);
  EXPECT_NE(first.find('b'), std::string::npos);
  EXPECT_NE(first.find('c'), std::string::npos);
}

// Weights 6:3:1 give shares within 2 points of 60/30/10 over 100,000 draws.
TEST(Random, WeightsHonoured) {
  Cluster c(seeded({6, 3, 1}, 7));
  auto h = c.histogram(100000);
  EXPECT_NEAR(h["a"] / 1000.0, 60, 2);
  EXPECT_NEAR(h["b"] / 1000.0, 30, 2);
  EXPECT_NEAR(h["c"] / 1000.0, 10, 2);
}

// Unusable endpoints are never picked, even when they hold most of the weight.
TEST(Random, SkipsUnusable) {
  Cluster c(seeded({100, 1, 1}, 3));
  c.set_healthy(0, false);
  auto h = c.histogram(2000);
  EXPECT_EQ(h.count("a"), 0u);
  EXPECT_NEAR(h["b"], 1000, 150);
  c.breaker(1).position = breaker::Position::kOpen;
  c.set_healthy(2, false);
  EXPECT_EQ(c.pick(), nullptr);
}

TEST(Random, Single) {
  Cluster c(seeded({3}, 1));
  EXPECT_EQ(c.sequence(4), "aaaa");
}

}  // namespace
}  // namespace switchyard::balancer
