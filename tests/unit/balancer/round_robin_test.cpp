#include "switchyard/balancer/round_robin.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace switchyard::balancer {
namespace {

using namespace testing;

// Pinned: equal weights rotate in order.
TEST(RoundRobin, EqualWeightsRotate) {
  auto eps = endpoints({1, 1, 1});
  auto s = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb(eps.size(), 1);
  EXPECT_EQ(sequence(*s, lb, 7), "abcabca");
}

// Pinned: smooth weighted order for {5,1,1} is the nginx sequence, no burst of five a's.
TEST(RoundRobin, SmoothWeightedSequence) {
  auto eps = endpoints({5, 1, 1});
  auto s = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb(eps.size(), 1);
  EXPECT_EQ(sequence(*s, lb, 14), "aabacaaaabacaa");
}

// The cycle is built on weights divided by their gcd: {10,20} cycles as "abb", length 3.
TEST(RoundRobin, CycleUsesReducedWeights) {
  auto eps = endpoints({10, 20});
  RoundRobin s(eps);
  EXPECT_EQ(s.cycle(), (std::vector<uint32_t>{1, 0, 1}));
}

// A down endpoint holding most of the weight: the others still alternate in their ratio, and
// picks never fail (the fallback walk takes over after repeated misses).
TEST(RoundRobin, HeavyEndpointDown) {
  auto eps = endpoints({50, 1, 1});
  auto s = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb(eps.size(), 1);
  eps[0].state->healthy = false;
  auto h = histogram(*s, lb, 1000);
  EXPECT_EQ(h.count("-"), 0u);
  EXPECT_EQ(h.count("a"), 0u);
  EXPECT_NEAR(h["b"], 500, 30);
}

// Weights are honoured exactly over a whole cycle.
TEST(RoundRobin, WeightsHonoured) {
  auto eps = endpoints({3, 2, 1});
  auto s = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb(eps.size(), 1);
  auto h = histogram(*s, lb, 600);
  EXPECT_EQ(h["a"], 300);
  EXPECT_EQ(h["b"], 200);
  EXPECT_EQ(h["c"], 100);
}

// Unhealthy and ejected endpoints are skipped; they come back when they recover.
TEST(RoundRobin, SkipsUnusable) {
  auto eps = endpoints({1, 1, 1});
  auto s = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb(eps.size(), 1);
  eps[1].state->healthy = false;
  EXPECT_EQ(sequence(*s, lb, 4), "acac");
  eps[2].state->breaker = registry::Breaker::kOpen;
  EXPECT_EQ(sequence(*s, lb, 3), "aaa");
  eps[1].state->healthy = true;
  eps[2].state->breaker = registry::Breaker::kClosed;
  auto h = histogram(*s, lb, 300);
  EXPECT_EQ(h["a"], 100);
  EXPECT_EQ(h["b"], 100);
}

TEST(RoundRobin, EmptyAndAllUnusable) {
  std::vector<Endpoint> none;
  auto s = build(config::Strategy::kRoundRobin, none);
  WorkerLbState lb(0, 1);
  EXPECT_EQ(s->pick({}, lb), nullptr);
  auto eps = endpoints({2, 1});
  auto w = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb2(eps.size(), 1);
  eps[0].state->healthy = false;
  eps[1].state->healthy = false;
  EXPECT_EQ(w->pick({}, lb2), nullptr);
}

TEST(RoundRobin, SingleEndpoint) {
  auto eps = endpoints({4});
  auto s = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb(eps.size(), 1);
  EXPECT_EQ(sequence(*s, lb, 3), "aaa");
}

// A retry avoids endpoints already tried while another is usable, and falls back to them.
TEST(RoundRobin, AvoidsTried) {
  auto eps = endpoints({1, 1});
  auto s = build(config::Strategy::kRoundRobin, eps);
  WorkerLbState lb(eps.size(), 1);
  uint32_t tried[] = {0};
  PickContext ctx;
  ctx.tried = tried;
  EXPECT_EQ(sequence(*s, lb, 3, ctx), "bbb");
  eps[1].state->healthy = false;
  EXPECT_EQ(sequence(*s, lb, 2, ctx), "aa");
}

}  // namespace
}  // namespace switchyard::balancer
