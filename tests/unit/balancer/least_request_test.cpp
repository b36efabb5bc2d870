#include "switchyard/balancer/least_request.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace switchyard::balancer {
namespace {

using namespace testing;

// With two endpoints the two choices are always both of them (distinct): the less busy wins
// every time.
TEST(LeastRequest, TwoDistinctChoicesPickLessBusy) {
  auto eps = endpoints({1, 1});
  auto s = build(config::Strategy::kLeastRequest, eps);
  WorkerLbState lb(eps.size(), 5);
  eps[0].state->active_requests = 10;
  eps[1].state->active_requests = 2;
  EXPECT_EQ(sequence(*s, lb, 20), std::string(20, 'b'));
  eps[1].state->active_requests = 11;
  EXPECT_EQ(sequence(*s, lb, 20), std::string(20, 'a'));
}

// Load is compared per unit of weight: 10 active on weight 4 beats 4 active on weight 1.
TEST(LeastRequest, ComparesPerUnitOfWeight) {
  auto eps = endpoints({4, 1});
  auto s = build(config::Strategy::kLeastRequest, eps);
  WorkerLbState lb(eps.size(), 5);
  eps[0].state->active_requests = 10;
  eps[1].state->active_requests = 4;
  EXPECT_EQ(sequence(*s, lb, 10), std::string(10, 'a'));
}

// When all are idle the split follows the weights (3:1), not "heaviest always".
TEST(LeastRequest, IdleSplitFollowsWeights) {
  auto eps = endpoints({3, 1});
  auto s = build(config::Strategy::kLeastRequest, eps);
  WorkerLbState lb(eps.size(), 9);
  auto h = histogram(*s, lb, 40000);
  EXPECT_NEAR(h["a"] / 400.0, 75, 2);
}

// Among many endpoints, the busiest one is (almost) never chosen: it can only win if both
// choices land on... it cannot, choices are distinct.
TEST(LeastRequest, NeverPicksTheBusiest) {
  auto eps = endpoints({1, 1, 1, 1, 1});
  auto s = build(config::Strategy::kLeastRequest, eps);
  WorkerLbState lb(eps.size(), 11);
  for (size_t i = 0; i < eps.size(); ++i) eps[i].state->active_requests = int64_t(i);
  auto h = histogram(*s, lb, 5000);
  EXPECT_EQ(h.count("e"), 0u);
  EXPECT_GT(h["a"], h["b"]);
}

TEST(LeastRequest, SkipsUnusableAndHandlesEdges) {
  auto eps = endpoints({1, 1, 1});
  auto s = build(config::Strategy::kLeastRequest, eps);
  WorkerLbState lb(eps.size(), 13);
  eps[0].state->healthy = false;
  eps[1].state->breaker = registry::Breaker::kOpen;
  EXPECT_EQ(sequence(*s, lb, 5), "ccccc");
  eps[2].state->healthy = false;
  EXPECT_EQ(s->pick({}, lb), nullptr);
  std::vector<Endpoint> none;
  WorkerLbState lb0(0, 1);
  EXPECT_EQ(build(config::Strategy::kLeastRequest, none)->pick({}, lb0), nullptr);
}

}  // namespace
}  // namespace switchyard::balancer
