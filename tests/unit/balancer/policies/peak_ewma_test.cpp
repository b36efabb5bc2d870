#include "balancer/policies/peak_ewma/peak_ewma.h"

#include <gtest/gtest.h>

#include "../test_util.h"

namespace switchyard::balancer {
namespace {

using testing::Cluster;
constexpr int64_t kMs = 1'000'000;

// The estimate jumps to a higher sample at once, and moves toward a lower one by
// 1 - exp(-elapsed / 5 s); with no samples it decays toward 0.
TEST(PeakEwmaEstimate, PeakUpAtOnceDecayDown) {
  PeakEwma p;
  EXPECT_LT(p.estimate(0), 0);
  p.observe(10.0, 1000 * kMs);
  EXPECT_DOUBLE_EQ(p.estimate(1000 * kMs), 10.0);
  p.observe(50.0, 1001 * kMs);  // a pause: 50 at once
  EXPECT_DOUBLE_EQ(p.estimate(1001 * kMs), 50.0);
  p.observe(10.0, 1001 * kMs + 5000 * kMs);      // 5 s later: weight exp(-1) on the old value
  const double w = PeakEwma::decay(5000 * kMs);  // exp(-1), approximated within 1%
  EXPECT_NEAR(w, std::exp(-1.0), 0.01 * std::exp(-1.0));
  EXPECT_NEAR(p.estimate(6001 * kMs), 50 * w + 10 * (1 - w), 1e-9);
  const double v = p.estimate(6001 * kMs);
  EXPECT_NEAR(p.estimate(11001 * kMs), v * w, 1e-9);  // idle: decays
}

// With requests waiting for their heads, silence counts: 300 ms without an answer is at least
// 300 ms, however quick the endpoint was before (a black hole or a pause shows at once).
TEST(PeakEwmaEstimate, SilenceWithRequestsWaitingIsLatency) {
  PeakEwma p;
  p.observe(2.0, 1000 * kMs);
  EXPECT_NEAR(p.estimate(1300 * kMs, /*awaiting_heads=*/0), 2.0 * std::exp(-0.06), 1e-3);
  EXPECT_DOUBLE_EQ(p.estimate(1300 * kMs, 3), 300.0);
  EXPECT_DOUBLE_EQ(p.estimate(1001 * kMs, 3), 2.0);  // 1 ms of silence: its own estimate
}

TEST(PeakEwmaEstimate, FailuresArePenalties) {
  PeakEwma p;
  p.observe_failure(0);
  EXPECT_DOUBLE_EQ(p.estimate(0), PeakEwma::kFailurePenaltyMs);
  p.observe(40.0, 0);  // a lower sample at the same instant: no time passed, no move
  EXPECT_DOUBLE_EQ(p.estimate(0), PeakEwma::kFailurePenaltyMs);
  p.observe_failure(0);  // 8 x the estimate
  EXPECT_DOUBLE_EQ(p.estimate(0), 8 * PeakEwma::kFailurePenaltyMs);
}

TEST(PeakEwmaCost, LatencyToTheOneAndAHalfTimesInFlightPerWeight) {
  const double l = 10.0 * std::sqrt(10.0);  // 9.9 + the 0.1 ms floor, ^1.5
  EXPECT_DOUBLE_EQ(latency_cost(9.9, 0, 0, 1), l);
  EXPECT_DOUBLE_EQ(latency_cost(9.9, 0, 4, 1), 5 * l);
  EXPECT_DOUBLE_EQ(latency_cost(9.9, 0, 4, 2), 2.5 * l);                  // weight 2: half the cost
  EXPECT_DOUBLE_EQ(latency_cost(-1, 4.9, 1, 1), 2 * 5 * std::sqrt(5.0));  // borrowed
}

testing::Spec spec(std::vector<uint32_t> w) { return testing::weights(std::move(w), "peak_ewma"); }

// Pinned: with seed 1 the first picks of three idle, unmeasured endpoints.
TEST(PeakEwmaPolicy, PinnedPicksAndTheLowerCostWins) {
  Cluster c(spec({1, 1, 1}));
  EXPECT_EQ(c.sequence(12), "cccacccaacab");
  auto now = steady_now_ns();
  c.load(0).peak.observe(5.0, now);
  c.load(1).peak.observe(5.0, now);
  c.load(2).peak.observe(15.0, now);
  auto picks = c.histogram(900);
  EXPECT_EQ(picks["c"], 0);  // 15 x 1 loses to 5 x 1 in every pair
  c.load(0).active_requests = 10;
  c.load(1).active_requests = 10;
  picks = c.histogram(900);
  EXPECT_NEAR(picks["c"], 600, 45);  // 15 x 1 beats 5 x 11: c wins every pair it is in (2/3)
}

TEST(PeakEwmaPolicy, SkipsUnusableTriedAndHandlesOneAndNone) {
  Cluster c(spec({1, 1}));
  c.set_healthy(0, false);
  auto picks = c.histogram(50);
  EXPECT_EQ(picks["b"], 50);
  PickMemo retry;
  retry.tried[retry.tried_count++] = 1;
  EXPECT_EQ(c.sequence(1, {}, &retry), "b");  // tried, but the only one usable
  c.set_healthy(1, false);
  EXPECT_EQ(c.sequence(1), "-");
  Cluster one(spec({1}));
  EXPECT_EQ(one.sequence(3), "aaa");
}

// Weight divides the cost: an idle weight-3 endpoint is cheaper than an idle weight-1 one, and
// it takes requests until it holds about three times as many in flight ((a + 1) / 3 vs b + 1).
TEST(PeakEwmaPolicy, WeightDividesTheCost) {
  Cluster c(spec({3, 1}));
  EXPECT_EQ(c.histogram(100)["a"], 100);
  c.load(0).active_requests = 5;  // 6 / 3 = 2 > 1: b
  EXPECT_EQ(c.histogram(100)["b"], 100);
  c.load(0).active_requests = 1;  // 2 / 3 < 1: a
  EXPECT_EQ(c.histogram(100)["a"], 100);
}

// Adding an endpoint leaves the others' costs alone: it takes its share of new requests.
TEST(PeakEwmaPolicy, AnAddedEndpointTakesItsShare) {
  Cluster c(spec({1, 1, 1, 1}));
  auto picks = c.histogram(4000);
  EXPECT_NEAR(picks["d"], 1000, 150);
}

}  // namespace
}  // namespace switchyard::balancer
