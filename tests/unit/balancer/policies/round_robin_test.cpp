#include "balancer/policies/round_robin/round_robin.h"

#include <gtest/gtest.h>

#include "../test_util.h"

namespace switchyard::balancer {
namespace {

using testing::Cluster;
using testing::weights;

// Pinned: equal weights rotate in order.
TEST(RoundRobin, EqualWeightsRotate) {
  Cluster c(weights({1, 1, 1}));
  EXPECT_EQ(c.sequence(7), "abcabca");
}

// Pinned: smooth weighted order for {5,1,1} is the nginx sequence, no burst of five a's.
TEST(RoundRobin, SmoothWeightedSequence) {
  Cluster c(weights({5, 1, 1}));
  EXPECT_EQ(c.sequence(14), "aabacaaaabacaa");
}

// The cycle is built on weights divided by their gcd: {10,20} cycles as "abb", length 3.
TEST(RoundRobin, CycleUsesReducedWeights) {
  Cluster c(weights({10, 20}));
  round_robin::Table table(c.balancer().members());
  EXPECT_EQ(table.cycle(), (std::vector<uint32_t>{1, 0, 1}));
}

// A down endpoint holding most of the weight: the others still alternate in their ratio, and
// picks never fail (the fallback walk takes over after repeated misses).
TEST(RoundRobin, HeavyEndpointDown) {
  Cluster c(weights({50, 1, 1}));
  c.set_healthy(0, false);
  auto h = c.histogram(1000);
  EXPECT_EQ(h.count("-"), 0u);
  EXPECT_EQ(h.count("a"), 0u);
  EXPECT_NEAR(h["b"], 500, 30);
}

// Weights are honoured exactly over a whole cycle.
TEST(RoundRobin, WeightsHonoured) {
  Cluster c(weights({3, 2, 1}));
  auto h = c.histogram(600);
  EXPECT_EQ(h["a"], 300);
  EXPECT_EQ(h["b"], 200);
  EXPECT_EQ(h["c"], 100);
}

// Unhealthy and ejected endpoints are skipped; they come back when they recover.
TEST(RoundRobin, SkipsUnusable) {
  Cluster c(weights({1, 1, 1}));
  c.set_healthy(1, false);
  EXPECT_EQ(c.sequence(4), "acac");
  c.breaker(2).position = breaker::Position::kOpen;
  EXPECT_EQ(c.sequence(3), "aaa");
  c.set_healthy(1, true);
  c.breaker(2).position = breaker::Position::kClosed;
  auto h = c.histogram(300);
  EXPECT_EQ(h["a"], 100);
  EXPECT_EQ(h["b"], 100);
}

TEST(RoundRobin, AllUnusable) {
  Cluster c(weights({2, 1}));
  c.set_healthy(0, false);
  c.set_healthy(1, false);
  EXPECT_EQ(c.pick(), nullptr);
  EXPECT_EQ(c.last_status(), 503u);
  EXPECT_EQ(c.last_reason(), "no healthy endpoint in cluster 'app'");
}

TEST(RoundRobin, SingleEndpoint) {
  Cluster c(weights({4}));
  EXPECT_EQ(c.sequence(3), "aaa");
}

// A retry avoids endpoints already tried while another is usable, and falls back to them.
TEST(RoundRobin, AvoidsTried) {
  Cluster c(weights({1, 1}));
  PickMemo tried;
  tried.tried[tried.tried_count++] = 0;
  EXPECT_EQ(c.sequence(3, {}, &tried), "bbb");
  c.set_healthy(1, false);
  EXPECT_EQ(c.sequence(2, {}, &tried), "aa");
}

}  // namespace
}  // namespace switchyard::balancer
