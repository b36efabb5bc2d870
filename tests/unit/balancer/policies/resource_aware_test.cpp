#include "balancer/policies/resource_aware/resource_aware.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "../test_util.h"

namespace switchyard::balancer {
namespace {

using resource_aware::LoadModel;
using resource_aware::share_weight;
using testing::Cluster;

// The contract's pick (score: seed): shares by headroom through a smooth weighted round robin.
testing::Spec spec(std::vector<uint32_t> w) {
  auto s = testing::weights(std::move(w), "resource_aware");
  s.blocks = "resource_aware: { score: seed }";
  return s;
}

// The default pick (score: fused): power of two choices on latency x in flight x (1 + score).
testing::Spec fused(std::vector<uint32_t> w) {
  return testing::weights(std::move(w), "resource_aware");
}

using namespace std::chrono_literals;
constexpr int64_t kSecond = 1'000'000'000;

LoadReport report(double cpu, double memory) {
  LoadReport r;
  r.cpu = cpu;
  r.memory = memory;
  return r;
}

// The seed's formula with its default weights: (cpu*0.4 + memory*0.3 + conn*0.3) / health.
TEST(LoadModel, ScoreReproducesTheFormula) {
  Cluster c(spec({1}));
  c.endpoint(0).base_cpu = 0.2;  // metadata: { cpu_usage: 0.2, memory_usage: 0.4 }
  c.endpoint(0).base_memory = 0.4;
  c.load(0).active_requests = 50;  // of connection_capacity 100
  LoadModel model(resource_aware::Config{});
  auto e = model.estimate(c.ref(0), 5 * kSecond);
  EXPECT_DOUBLE_EQ(e.cpu, 0.2);
  EXPECT_DOUBLE_EQ(e.memory, 0.4);
  EXPECT_DOUBLE_EQ(e.connections, 0.5);
  EXPECT_NEAR(e.score, 0.2 * 0.4 + 0.4 * 0.3 + 0.5 * 0.3, 1e-12);  // 0.35
  EXPECT_LT(e.report_age_s, 0);
  c.breaker(0).health_score = 0.5;
  EXPECT_NEAR(model.estimate(c.ref(0), 5 * kSecond).score, 0.7, 1e-12);
  // Weight doubles the capacity: the same in-flight count weighs half.
  c.endpoint(0).weight = 2;
  EXPECT_DOUBLE_EQ(model.estimate(c.ref(0), 5 * kSecond).connections, 0.25);
}

TEST(LoadModel, StaleReportsFadeToTheBaseWithoutACliff) {
  Cluster c(spec({1}));
  resource_aware::Config cfg;  // max_report_age 10s
  LoadModel model(cfg);
  apply_load_report(c.load(0), report(0.9, 0.1), 100 * kSecond);
  auto at = [&](double seconds) {
    return model.estimate(c.ref(0), 100 * kSecond + static_cast<int64_t>(seconds * kSecond));
  };
  EXPECT_DOUBLE_EQ(at(0).cpu, 0.9);
  EXPECT_NEAR(at(5).cpu, 0.5 + 0.4 / (1 + 0.0625), 1e-9);  // still ~94% of the report
  EXPECT_NEAR(at(10).cpu, 0.7, 1e-9);                      // half way back to 0.5
  EXPECT_NEAR(at(10).memory, 0.3, 1e-9);
  EXPECT_NEAR(at(20).cpu, 0.5 + 0.4 / 17, 1e-9);
  EXPECT_NEAR(at(60).cpu, 0.5, 0.001);
  EXPECT_NEAR(at(10).report_age_s, 10, 1e-9);
  // Smooth: nowhere between 0 and 30 s does it move more than 1.25% of the range in 100 ms.
  for (double t = 0; t < 30; t += 0.1) EXPECT_LT(at(t).cpu - at(t + 0.1).cpu, 0.005) << t;
  for (double t = 0; t < 30; t += 0.1) EXPECT_GE(at(t).cpu, at(t + 0.1).cpu) << t;
}

TEST(LoadModel, PredictionFollowsRequestsSentSinceTheReport) {
  Cluster c(spec({1}));
  auto& s = c.load(0);
  LoadModel model(resource_aware::Config{});
  apply_load_report(s, report(0.2, 0.2), kSecond);
  s.active_requests = 10;  // 10 more in flight since: the prior is 1/capacity per request
  EXPECT_NEAR(model.estimate(c.ref(0), kSecond).cpu, 0.2 + 10 * 0.01, 1e-9);
  // The next report, 10 requests later, says 0.7: 0.05 per request learned; the applied value
  // moves by at most kMaxStepPerReport.
  apply_load_report(s, report(0.7, 0.2), 2 * kSecond);
  EXPECT_NEAR(s.cpu_per_request.load(), 0.05, 1e-9);
  EXPECT_NEAR(s.report_cpu.load(), 0.2 + kMaxStepPerReport, 1e-9);
  s.active_requests = 14;
  EXPECT_NEAR(model.estimate(c.ref(0), 2 * kSecond).cpu, 0.2 + kMaxStepPerReport + 4 * 0.05, 1e-9);
  s.active_requests = 0;  // requests finished: the prediction falls below the report
  EXPECT_NEAR(model.estimate(c.ref(0), 2 * kSecond).cpu,
              std::max(0.0, 0.2 + kMaxStepPerReport - 10 * 0.05), 1e-9);
}

TEST(LoadModel, OneReportMovesTheEstimateByABoundedStep) {
  Cluster c(spec({1}));
  auto& s = c.load(0);
  apply_load_report(s, report(0.9, 0.9), kSecond);
  EXPECT_DOUBLE_EQ(s.report_cpu.load(), 0.9);  // the first report is taken as is
  apply_load_report(s, report(0.0, 0.0), 2 * kSecond);
  EXPECT_DOUBLE_EQ(s.report_cpu.load(), 0.9 - kMaxStepPerReport);
  EXPECT_DOUBLE_EQ(s.report_memory.load(), 0.9 - kMaxStepPerReport);
  for (int i = 0; i < 4; ++i) apply_load_report(s, report(0.0, 0.0), 3 * kSecond);
  EXPECT_DOUBLE_EQ(s.report_cpu.load(), 0.0);
  EXPECT_EQ(s.reports.load(), 6u);
}

// Shares follow share_weight: 0.9 next to 0.1 (memory 0.5 for both): scores 0.51 and 0.19,
// weights (0.49/0.51)^2 = 0.92 and (0.81/0.19)^2 = 18.2: the busy one gets under 5%.
TEST(ResourceAware, ReportedLoadDecidesTheShare) {
  Cluster c(spec({1, 1}));
  auto now = steady_now_ns();
  apply_load_report(c.load(0), report(0.9, 0.5), now);
  apply_load_report(c.load(1), report(0.1, 0.5), now);
  auto picks = c.histogram(1000);
  EXPECT_NEAR(picks["a"], 1000 * 0.92 / (0.92 + 18.2), 5);
}

// Close loads all share, in order: 0.30 / 0.33 / 0.36 (CPU and memory) score 0.21 / 0.231 /
// 0.252; weights 14.2 / 11.1 / 8.8: 41 / 33 / 26%, interleaved, never a burst.
TEST(ResourceAware, CloseLoadsShareInOrder) {
  auto sp = spec({1, 1, 1});
  sp.seed = 7;
  Cluster c(sp);
  auto now = steady_now_ns();
  apply_load_report(c.load(0), report(0.30, 0.30), now);
  apply_load_report(c.load(1), report(0.33, 0.33), now);
  apply_load_report(c.load(2), report(0.36, 0.36), now);
  std::map<std::string, int> count;
  std::string last;
  int run = 0, longest = 0;
  for (int i = 0; i < 600; ++i) {
    std::string name = Cluster::name(c.pick());
    ++count[name];
    run = name == last ? run + 1 : 1;
    longest = std::max(longest, run);
    last = name;
  }
  EXPECT_NEAR(count["a"], 600 * 0.41, 8);
  EXPECT_NEAR(count["b"], 600 * 0.33, 8);
  EXPECT_NEAR(count["c"], 600 * 0.26, 8);
  EXPECT_LE(longest, 2);  // smooth: no endpoint gets more than two picks in a row
}

TEST(ResourceAware, EqualLoadsShareEqually) {
  Cluster c(spec({1, 1, 1, 1}));
  auto picks = c.histogram(4000);
  for (const char* name : {"a", "b", "c", "d"}) EXPECT_NEAR(picks[name], 1000, 5) << name;
}

// Slowness counts where the load agrees: an endpoint answering in 30 ms next to one in 10 ms,
// with a load score 0.06 above it, has its score multiplied by (30 + 2) / (10 + 2) = 2.67;
// the same slowness at an equal or lower load costs nothing.
TEST(ResourceAware, SlowResponsesCountWhereTheLoadAgrees) {
  EXPECT_DOUBLE_EQ(share_weight(0.3, 0.3, 30, 10, 1), share_weight(0.3, 0.3, 10, 10, 1));
  const double slow = share_weight(0.36, 0.30, 30, 10, 1);
  const double s = 0.36 * 32.0 / 12.0;
  EXPECT_NEAR(slow, std::pow((1 - s) / s, 2), 1e-12);
  const double partly = share_weight(0.325, 0.30, 30, 10, 1);  // half the evidence
  const double p = 0.325 * (1 + (32.0 / 12.0 - 1) * 0.5);
  EXPECT_NEAR(partly, std::pow((1 - p) / p, 2), 1e-12);
  Cluster c(spec({1, 1}));
  auto now = steady_now_ns();
  apply_load_report(c.load(0), report(0.30, 0.30), now);
  apply_load_report(c.load(1), report(0.45, 0.45), now);
  c.load(0).response_ms = 10.0;
  c.load(1).response_ms = 30.0;
  auto picks = c.histogram(1000);
  EXPECT_LT(picks["b"], 5);  // loaded and slow: only a trickle
}

TEST(ResourceAware, SkipsUnusableAndTriedEndpoints) {
  Cluster c(spec({1, 1, 1}));
  auto now = steady_now_ns();
  apply_load_report(c.load(0), report(0.0, 0.0), now);
  apply_load_report(c.load(1), report(0.5, 0.5), now);
  apply_load_report(c.load(2), report(0.9, 0.9), now);
  EXPECT_EQ(Cluster::name(c.pick()), "a");
  c.set_healthy(0, false);
  EXPECT_EQ(Cluster::name(c.pick()), "b");
  PickMemo retry;
  retry.tried[retry.tried_count++] = 1;
  EXPECT_EQ(c.sequence(1, {}, &retry), "c");
  c.breaker(2).position = breaker::Position::kOpen;
  EXPECT_EQ(c.sequence(1, {}, &retry), "b");  // tried, but the only one usable
  c.set_healthy(1, false);
  EXPECT_EQ(c.sequence(1, {}, &retry), "-");
}

// An endpoint with no fresh report gets one request per max_report_age / 4 (so that its answer
// refreshes the report), not more, however unattractive its estimate.
TEST(ResourceAware, StaleEndpointsGetARefreshRequest) {
  Cluster c(spec({1, 1}));
  apply_load_report(c.load(0), report(0.0, 0.0), steady_now_ns());
  c.endpoint(1).base_cpu = 1.0;  // never reported, and its metadata says it is full
  c.endpoint(1).base_memory = 1.0;
  c.build();
  auto picks = c.histogram(500);
  EXPECT_EQ(picks["b"], 1);
  EXPECT_EQ(picks["a"], 499);
  EXPECT_GT(c.load(1).refresh_at_ns.load(), steady_now_ns() + kSecond);  // next in ~2.5 s
}

TEST(ResourceAware, ManyEndpointsAreSampled) {
  auto sp = spec(std::vector<uint32_t>(200, 1));
  sp.seed = 3;
  Cluster c(sp);
  auto now = steady_now_ns();
  for (size_t i = 0; i < 200; ++i)
    apply_load_report(c.load(i), report(i < 100 ? 0.9 : 0.1, 0.3), now);
  int low = 0;
  for (int i = 0; i < 2000; ++i) low += c.pick()->index >= 100;
  // A weighted draw among 16 samples: scores 0.45 vs 0.13, weights 1.49 vs 44.6.
  EXPECT_GT(low, 1900);
}

// The load factor is the seed's weight inverted: (s / (1 - s))^2.
TEST(ResourceAwareFused, LoadFactorAndVerdicts) {
  EXPECT_DOUBLE_EQ(load_factor(0.5), 1.0);
  EXPECT_DOUBLE_EQ(load_factor(0.2), 0.0625);
  EXPECT_NEAR(load_factor(0.9), 81.0, 1e-9);
  EXPECT_DOUBLE_EQ(fused_cost(10.0, 0.5), 10.0);
  using resource_aware::Verdict;
  EXPECT_EQ(resource_aware::fused_verdict(5, 6, 0, 0), Verdict::kShare);   // idle, alike
  EXPECT_EQ(resource_aware::fused_verdict(-1, 6, 0, 0), Verdict::kShare);  // unmeasured
  EXPECT_EQ(resource_aware::fused_verdict(5, 6, 1, 0), Verdict::kLoadCounts);
  EXPECT_EQ(resource_aware::fused_verdict(5, 15, 0, 0), Verdict::kLatency);    // 5 x 1.25 + 2 < 15
  EXPECT_EQ(resource_aware::fused_verdict(5, 8, 3, 3), Verdict::kLoadCounts);  // within the band
  // Idle with reports far apart: the reports decide, whatever one sample of latency says.
  EXPECT_EQ(resource_aware::fused_verdict(8, 1, 0, 0, 0.32), Verdict::kShare);
  EXPECT_EQ(resource_aware::fused_verdict(8, 1, 0, 0, 0.1), Verdict::kLatency);
  EXPECT_EQ(resource_aware::fused_verdict(8, 1, 2, 0, 0.32), Verdict::kLatency);
}

// Reports that disagree with latency (the slower one reports less load: its slots are free
// because it is slow) do not count: latency and in-flight decide, and the slow one gets less.
TEST(ResourceAwareFused, ASlowerEndpointGetsLessWhenReportsDisagree) {
  Cluster c(fused({1, 1, 1}));
  auto now = steady_now_ns();
  for (size_t i = 0; i < 3; ++i) {
    apply_load_report(c.load(i), report(i == 2 ? 0.5 : 1.0, 0.3), now);  // fast ones "full"
    c.load(i).peak.observe(i == 2 ? 15.0 : 5.0, now);
    c.load(i).active_requests = 4;
  }
  // 15^1.5 x 5 = 290 against 5^1.5 x 5 = 56: the slow one wins no pair.
  EXPECT_EQ(c.histogram(3000)["c"], 0);
  c.load(0).active_requests = 6;
  c.load(1).active_requests = 6;
  c.load(2).active_requests = 0;  // 58 x 1 against 11.2 x 7 = 78: now it wins its pairs
  EXPECT_GT(c.histogram(3000)["c"], 1500);
}

// Reports that agree with latency (the slower one is also the more loaded: a neighbour holds its
// CPU) count fully, with the seed's slowdown: it gets nothing even while the others hold many
// requests (scores 0.45 vs 0.22, three times slower: its score becomes 1.2, its weight 1e-4).
TEST(ResourceAwareFused, ASlowerEndpointThatReportsItGetsNearlyNothing) {
  Cluster c(fused({1, 1, 1}));
  auto now = steady_now_ns();
  for (size_t i = 0; i < 3; ++i) {
    apply_load_report(c.load(i), report(i == 2 ? 0.9 : 0.1, 0.3), now);
    c.load(i).peak.observe(i == 2 ? 30.0 : 10.0, now);
    c.load(i).active_requests = i == 2 ? 0 : 30;
  }
  EXPECT_EQ(c.histogram(3000)["c"], 0);
}

// Idle and equally quick: the reports share as the seed does (its smooth round robin over every
// member): 0.30 / 0.33 / 0.36 give 42 / 32 / 26%, never none, exactly in order.
TEST(ResourceAwareFused, IdleEndpointsShareByTheSeedsWeights) {
  Cluster c(fused({1, 1, 1}));
  auto now = steady_now_ns();
  apply_load_report(c.load(0), report(0.30, 0.30), now);
  apply_load_report(c.load(1), report(0.33, 0.33), now);
  apply_load_report(c.load(2), report(0.36, 0.36), now);
  for (size_t i = 0; i < 3; ++i) c.load(i).peak.observe(1.0, now);
  auto picks = c.histogram(6000);
  EXPECT_NEAR(picks["a"], 6000 * 0.416, 30);
  EXPECT_NEAR(picks["b"], 6000 * 0.325, 30);
  EXPECT_NEAR(picks["c"], 6000 * 0.259, 30);
}

// A failure is a penalty sample: an endpoint that answers 503 at once looks slow.
TEST(ResourceAwareFused, FastFailuresCountAsSlow) {
  Cluster c(fused({1, 1}));
  auto now = steady_now_ns();
  c.load(0).peak.observe(1.0, now);
  c.load(1).peak.observe(0.2, now);     // faster...
  c.load(1).peak.observe_failure(now);  // ...but it fails
  EXPECT_GE(c.load(1).peak.estimate(now), PeakEwma::kFailurePenaltyMs);
  auto picks = c.histogram(1000);
  EXPECT_GT(picks["a"], 990);
}

// Reports still decide between equally fast endpoints: a full one costs twice an idle one.
TEST(ResourceAwareFused, ReportedLoadStillScalesTheCost) {
  Cluster c(fused({1, 1}));
  auto now = steady_now_ns();
  apply_load_report(c.load(0), report(1.0, 1.0), now);
  apply_load_report(c.load(1), report(0.0, 0.0), now);
  for (size_t i = 0; i < 2; ++i) c.load(i).peak.observe(5.0, now);
  c.load(0).active_requests = 1;
  c.load(1).active_requests = 2;
  // a: 5 x 2 x (1 + 0.7) = 17; b: 5 x 3 x (1 + 0.006): b, although it holds more.
  auto picks = c.histogram(100);
  EXPECT_EQ(picks["b"], 100);
}

}  // namespace
}  // namespace switchyard::balancer
