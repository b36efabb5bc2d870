#include <gtest/gtest.h>

#include "../test_util.h"

namespace switchyard::balancer {
namespace {

using testing::Cluster;

testing::Spec spec(std::vector<uint32_t> w, uint64_t seed) {
  auto s = testing::weights(std::move(w), "least_request");
  s.seed = seed;
  return s;
}

// With two endpoints the two choices are always both of them (distinct): the less busy wins
// every time.
TEST(LeastRequest, TwoDistinctChoicesPickLessBusy) {
  Cluster c(spec({1, 1}, 5));
  c.load(0).active_requests = 10;
  c.load(1).active_requests = 2;
  EXPECT_EQ(c.sequence(20), std::string(20, 'b'));
  c.load(1).active_requests = 11;
  EXPECT_EQ(c.sequence(20), std::string(20, 'a'));
}

// Load is compared per unit of weight: 10 active on weight 4 beats 4 active on weight 1.
TEST(LeastRequest, ComparesPerUnitOfWeight) {
  Cluster c(spec({4, 1}, 5));
  c.load(0).active_requests = 10;
  c.load(1).active_requests = 4;
  EXPECT_EQ(c.sequence(10), std::string(10, 'a'));
}

// When all are idle the split follows the weights (3:1), not "heaviest always".
TEST(LeastRequest, IdleSplitFollowsWeights) {
  Cluster c(spec({3, 1}, 9));
  auto h = c.histogram(40000);
  EXPECT_NEAR(h["a"] / 400.0, 75, 2);
}

// Among many endpoints, the busiest one is never chosen: the two choices are distinct, and
// the busiest loses to any other.
TEST(LeastRequest, NeverPicksTheBusiest) {
  Cluster c(spec({1, 1, 1, 1, 1}, 11));
  for (size_t i = 0; i < 5; ++i) c.load(i).active_requests = int64_t(i);
  auto h = c.histogram(5000);
  EXPECT_EQ(h.count("e"), 0u);
  EXPECT_GT(h["a"], h["b"]);
}

TEST(LeastRequest, SkipsUnusable) {
  Cluster c(spec({1, 1, 1}, 13));
  c.set_healthy(0, false);
  c.breaker(1).position = breaker::Position::kOpen;
  EXPECT_EQ(c.sequence(5), "ccccc");
  c.set_healthy(2, false);
  EXPECT_EQ(c.pick(), nullptr);
}

}  // namespace
}  // namespace switchyard::balancer
