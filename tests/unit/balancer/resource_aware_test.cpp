#include "switchyard/balancer/resource_aware.h"

#include <gtest/gtest.h>

#include <cmath>

#include <map>

#include "test_util.h"

namespace switchyard::balancer {
namespace {

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
  auto eps = testing::endpoints({1});
  eps[0].base_cpu = 0.2;  // metadata: { cpu_usage: 0.2, memory_usage: 0.4 }
  eps[0].base_memory = 0.4;
  eps[0].state->active_requests = 50;  // of connection_capacity 100
  LoadModel model(config::ResourceAware{});
  auto e = model.estimate(eps[0], 5 * kSecond);
  EXPECT_DOUBLE_EQ(e.cpu, 0.2);
  EXPECT_DOUBLE_EQ(e.memory, 0.4);
  EXPECT_DOUBLE_EQ(e.connections, 0.5);
  EXPECT_NEAR(e.score, 0.2 * 0.4 + 0.4 * 0.3 + 0.5 * 0.3, 1e-12);  // 0.35
  EXPECT_LT(e.report_age_s, 0);
  eps[0].state->health_score = 0.5;
  EXPECT_NEAR(model.estimate(eps[0], 5 * kSecond).score, 0.7, 1e-12);
  // Weight doubles the capacity: the same in-flight count weighs half.
  eps[0].weight = 2;
  EXPECT_DOUBLE_EQ(model.estimate(eps[0], 5 * kSecond).connections, 0.25);
}

TEST(LoadModel, StaleReportsFadeToTheBaseWithoutACliff) {
  auto eps = testing::endpoints({1});
  config::ResourceAware cfg;  // max_report_age 10s
  LoadModel model(cfg);
  apply_load_report(*eps[0].state, report(0.9, 0.1), 100 * kSecond);
  auto at = [&](double seconds) {
    return model.estimate(eps[0], 100 * kSecond + static_cast<int64_t>(seconds * kSecond));
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
  auto eps = testing::endpoints({1});
  auto& s = *eps[0].state;
  LoadModel model(config::ResourceAware{});
  apply_load_report(s, report(0.2, 0.2), kSecond);
  s.active_requests = 10;  // 10 more in flight since: the prior is 1/capacity per request
  EXPECT_NEAR(model.estimate(eps[0], kSecond).cpu, 0.2 + 10 * 0.01, 1e-9);
  // The next report, 10 requests later, says 0.7: 0.05 per request learned; the applied value
  // moves by at most kMaxStepPerReport.
  apply_load_report(s, report(0.7, 0.2), 2 * kSecond);
  EXPECT_NEAR(s.cpu_per_request.load(), 0.05, 1e-9);
  EXPECT_NEAR(s.report_cpu.load(), 0.2 + kMaxStepPerReport, 1e-9);
  s.active_requests = 14;
  EXPECT_NEAR(model.estimate(eps[0], 2 * kSecond).cpu, 0.2 + kMaxStepPerReport + 4 * 0.05, 1e-9);
  s.active_requests = 0;  // requests finished: the prediction falls below the report
  EXPECT_NEAR(model.estimate(eps[0], 2 * kSecond).cpu,
              std::max(0.0, 0.2 + kMaxStepPerReport - 10 * 0.05), 1e-9);
}

TEST(LoadModel, OneReportMovesTheEstimateByABoundedStep) {
  auto eps = testing::endpoints({1});
  auto& s = *eps[0].state;
  apply_load_report(s, report(0.9, 0.9), kSecond);
  EXPECT_DOUBLE_EQ(s.report_cpu.load(), 0.9);  // the first report is taken as is
  apply_load_report(s, report(0.0, 0.0), 2 * kSecond);
  EXPECT_DOUBLE_EQ(s.report_cpu.load(), 0.9 - kMaxStepPerReport);
  EXPECT_DOUBLE_EQ(s.report_memory.load(), 0.9 - kMaxStepPerReport);
  for (int i = 0; i < 4; ++i) apply_load_report(s, report(0.0, 0.0), 3 * kSecond);
  EXPECT_DOUBLE_EQ(s.report_cpu.load(), 0.0);
  EXPECT_EQ(s.reports.load(), 6u);
}

struct Picks {
  std::map<std::string, int> count;
  int of(const std::string& name) { return count[name]; }
};

Picks pick_many(const Strategy& s, std::vector<Endpoint>& eps, int n, bool hold) {
  WorkerLbState lb(eps.size(), 7);
  Picks out;
  for (int i = 0; i < n; ++i) {
    const Endpoint* ep = s.pick({}, lb);
    if (!ep) {
      ++out.count["-"];
      continue;
    }
    ++out.count[ep->address_text];
    if (hold) ep->state->active_requests.fetch_add(1);  // the request stays in flight
  }
  return out;
}

// Shares follow share_weight: 0.9 next to 0.1 (memory 0.5 for both): scores 0.51 and 0.19,
// weights (0.49/0.51)^2 = 0.92 and (0.81/0.19)^2 = 18.2: the busy one gets under 5%.
TEST(ResourceAware, ReportedLoadDecidesTheShare) {
  auto eps = testing::endpoints({1, 1});
  auto now = steady_now_ns();
  apply_load_report(*eps[0].state, report(0.9, 0.5), now);
  apply_load_report(*eps[1].state, report(0.1, 0.5), now);
  auto s = testing::build(config::Strategy::kResourceAware, eps);
  auto picks = pick_many(*s, eps, 1000, false);
  EXPECT_NEAR(picks.of("a"), 1000 * 0.92 / (0.92 + 18.2), 5);
}

// Close loads all share, in order: 0.30 / 0.33 / 0.36 (CPU and memory) score 0.21 / 0.231 /
// 0.252; weights 14.2 / 11.1 / 8.8: 41 / 33 / 26%, interleaved, never a burst.
TEST(ResourceAware, CloseLoadsShareInOrder) {
  auto eps = testing::endpoints({1, 1, 1});
  auto now = steady_now_ns();
  apply_load_report(*eps[0].state, report(0.30, 0.30), now);
  apply_load_report(*eps[1].state, report(0.33, 0.33), now);
  apply_load_report(*eps[2].state, report(0.36, 0.36), now);
  auto s = testing::build(config::Strategy::kResourceAware, eps);
  WorkerLbState lb(eps.size(), 7);
  s->prepare(lb);
  std::map<std::string, int> count;
  std::string last;
  int run = 0, longest = 0;
  for (int i = 0; i < 600; ++i) {
    std::string name = s->pick({}, lb)->address_text;
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
  auto eps = testing::endpoints({1, 1, 1, 1});
  auto s = testing::build(config::Strategy::kResourceAware, eps);
  auto picks = pick_many(*s, eps, 4000, false);
  for (const char* name : {"a", "b", "c", "d"}) EXPECT_NEAR(picks.of(name), 1000, 5) << name;
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
  auto eps = testing::endpoints({1, 1});
  auto now = steady_now_ns();
  apply_load_report(*eps[0].state, report(0.30, 0.30), now);
  apply_load_report(*eps[1].state, report(0.45, 0.45), now);
  eps[0].state->response_ms = 10.0;
  eps[1].state->response_ms = 30.0;
  auto st = testing::build(config::Strategy::kResourceAware, eps);
  auto picks = pick_many(*st, eps, 1000, false);
  EXPECT_LT(picks.of("b"), 5);  // loaded and slow: only a trickle
}

TEST(ResourceAware, SkipsUnusableAndTriedEndpoints) {
  auto eps = testing::endpoints({1, 1, 1});
  auto now = steady_now_ns();
  apply_load_report(*eps[0].state, report(0.0, 0.0), now);
  apply_load_report(*eps[1].state, report(0.5, 0.5), now);
  apply_load_report(*eps[2].state, report(0.9, 0.9), now);
  auto s = testing::build(config::Strategy::kResourceAware, eps);
  WorkerLbState lb(3, 1);
  EXPECT_EQ(s->pick({}, lb)->address_text, "a");
  eps[0].state->healthy = false;
  EXPECT_EQ(s->pick({}, lb)->address_text, "b");
  PickContext retry;
  uint32_t tried[] = {1};
  retry.tried = tried;
  EXPECT_EQ(s->pick(retry, lb)->address_text, "c");
  eps[2].state->breaker = registry::Breaker::kOpen;
  EXPECT_EQ(s->pick(retry, lb)->address_text, "b");  // tried, but the only one usable
  eps[1].state->healthy = false;
  EXPECT_EQ(s->pick(retry, lb), nullptr);
}

// An endpoint with no fresh report gets one request per max_report_age / 4 (so that its answer
// refreshes the report), not more, however unattractive its estimate.
TEST(ResourceAware, StaleEndpointsGetARefreshRequest) {
  auto eps = testing::endpoints({1, 1});
  apply_load_report(*eps[0].state, report(0.0, 0.0), steady_now_ns());
  eps[1].base_cpu = 1.0;  // never reported, and its metadata says it is full
  eps[1].base_memory = 1.0;
  auto s = testing::build(config::Strategy::kResourceAware, eps);
  auto picks = pick_many(*s, eps, 500, false);
  EXPECT_EQ(picks.of("b"), 1);
  EXPECT_EQ(picks.of("a"), 499);
  EXPECT_GT(eps[1].state->refresh_at_ns.load(), steady_now_ns() + kSecond);  // next in ~2.5 s
}

TEST(ResourceAware, ManyEndpointsAreSampled) {
  std::vector<uint32_t> weights(200, 1);
  auto eps = testing::endpoints(weights);
  for (auto& ep : eps) ep.address_text = std::to_string(ep.index);
  auto now = steady_now_ns();
  for (auto& ep : eps) apply_load_report(*ep.state, report(ep.index < 100 ? 0.9 : 0.1, 0.3), now);
  auto s = testing::build(config::Strategy::kResourceAware, eps);
  WorkerLbState lb(eps.size(), 3);
  int low = 0;
  for (int i = 0; i < 2000; ++i) low += s->pick({}, lb)->index >= 100;
  // A weighted draw among 16 samples: scores 0.45 vs 0.13, weights 1.49 vs 44.6.
  EXPECT_GT(low, 1900);
}

}  // namespace
}  // namespace switchyard::balancer
