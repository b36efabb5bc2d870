#include "balancer/weight_learner.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace switchyard::balancer {
namespace {

constexpr int64_t kMs = 1'000'000;

// Samples whose latency follows latency(cpu, memory, conn) with noise, signals drawn apart.
template <typename F>
std::vector<WeightSample> samples(F latency, int n, double noise_ms, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.05, 0.95);
  std::normal_distribution<double> e(0, noise_ms);
  std::vector<WeightSample> out;
  for (int i = 0; i < n; ++i) {
    WeightSample s;
    s.at_ns = i * 100 * kMs;
    s.cpu = u(rng);
    s.memory = u(rng);
    s.connections = u(rng);
    s.latency_ms = latency(s.cpu, s.memory, s.connections) + e(rng);
    out.push_back(s);
  }
  return out;
}

TEST(WeightLearner, MemoryThatDrivesLatencyGetsTheLargestWeight) {
  auto s = samples([](double, double m, double) { return 5 + 40 * m; }, 300, 1.0);
  WeightFit fit = fit_weights(s, LearnerConfig{});
  ASSERT_TRUE(fit.ok);
  EXPECT_GT(fit.r2, 0.9);
  EXPECT_GT(fit.weights.memory, fit.weights.cpu);
  EXPECT_GT(fit.weights.memory, fit.weights.connections);
  // Bounded: memory at most 0.8 of the sum (1.0), the others at least 0.05.
  EXPECT_NEAR(fit.weights.memory, 0.8, 1e-9);
  EXPECT_GE(fit.weights.cpu, 0.05 - 1e-9);
  EXPECT_NEAR(fit.weights.cpu + fit.weights.memory + fit.weights.connections, 1.0, 1e-9);
}

TEST(WeightLearner, SharesFollowTheCoefficients) {
  // latency = 20 cpu + 10 memory + 10 conn: shares 0.5 / 0.25 / 0.25.
  auto s =
      samples([](double c, double m, double k) { return 2 + 20 * c + 10 * m + 10 * k; }, 400, 0.2);
  WeightFit fit = fit_weights(s, LearnerConfig{});
  ASSERT_TRUE(fit.ok);
  EXPECT_NEAR(fit.weights.cpu, 0.5, 0.03);
  EXPECT_NEAR(fit.weights.memory, 0.25, 0.03);
  EXPECT_NEAR(fit.weights.connections, 0.25, 0.03);
}

TEST(WeightLearner, ASignalThatLowersLatencyPredictsNothing) {
  // Latency falls as memory rises (a cache that fills): memory's coefficient is not used.
  auto s = samples([](double c, double m, double) { return 30 + 20 * c - 15 * m; }, 400, 0.5);
  WeightFit fit = fit_weights(s, LearnerConfig{});
  ASSERT_TRUE(fit.ok);
  EXPECT_LE(fit.weights.memory, 0.1 + 1e-6);  // no share of its own: a part of the floor
  EXPECT_NEAR(fit.weights.cpu, 0.8, 1e-6);
}

TEST(WeightLearner, FlatSignalsAndNoiseLeaveTheStaticWeights) {
  // Nothing moves with latency: no fit.
  std::vector<WeightSample> s;
  std::mt19937 rng(3);
  std::normal_distribution<double> e(10, 2);
  for (int i = 0; i < 200; ++i) s.push_back({i * 100 * kMs, 0.4, 0.4, 0.2, e(rng)});
  EXPECT_FALSE(fit_weights(s, LearnerConfig{}).ok);
  // Pure noise with moving signals: a fit that explains almost nothing.
  auto noisy = samples([](double, double, double) { return 10.0; }, 300, 3.0, 11);
  WeightFit fit = fit_weights(noisy, LearnerConfig{});
  EXPECT_LT(fit.r2, 0.1);
}

TEST(WeightLearner, BoundSharesKeepsTheSumAndTheBounds) {
  ResourceWeights w = bound_shares({0.98, 0.01, 0.01}, 0.05, 0.8);
  EXPECT_NEAR(w.cpu, 0.8, 1e-9);
  EXPECT_NEAR(w.memory, 0.1, 1e-9);
  EXPECT_NEAR(w.connections, 0.1, 1e-9);
  w = bound_shares({0.5, 0.5, 0.0}, 0.05, 0.8);
  EXPECT_NEAR(w.connections, 0.05, 1e-9);
  EXPECT_NEAR(w.cpu + w.memory + w.connections, 1.0, 1e-9);
}

TEST(WeightLearner, PublishesStaticFirstThenMovesGraduallyTowardTheFit) {
  WeightLearner learner;
  LearnedWeights out;
  LearnerConfig cfg;
  learner.update(0, cfg, out);
  ASSERT_GE(out.cpu.load(), 0);
  EXPECT_NEAR(out.cpu.load(), 0.4, 1e-9);  // static until enough samples
  auto s = samples([](double, double m, double) { return 5 + 40 * m; }, 300, 1.0);
  int64_t t = 0;
  double previous = out.memory.load();
  bool monotone = true;
  for (auto& x : s) {
    x.at_ns = t;
    learner.add(x);
    t += 100 * kMs;
    learner.update(t, cfg, out);
    if (out.memory.load() + 1e-12 < previous) monotone = false;
    previous = out.memory.load();
  }
  EXPECT_TRUE(monotone);
  EXPECT_GT(out.memory.load(), 0.6);  // 30 s of samples, smoothing 5 s: close to the fit
  EXPECT_LT(out.cpu.load(), 0.2);
  EXPECT_GT(out.confidence.load(), 0.99);
  EXPECT_GE(out.samples.load(), 50u);
  // One update moves at most 1 - exp(-0.5 / 5) (~10%) of the way.
  WeightLearner fresh;
  LearnedWeights o2;
  fresh.update(0, cfg, o2);
  for (auto x : s) {
    x.at_ns = 0;
    fresh.add(x);
  }
  fresh.update(500 * kMs, cfg, o2);
  EXPECT_LT(o2.memory.load(), 0.3 + 0.11 * (0.8 - 0.3));
}

TEST(WeightLearner, OldSamplesLeaveTheWindow) {
  WeightLearner learner;
  LearnedWeights out;
  LearnerConfig cfg;
  cfg.window_ns = 10'000 * kMs;
  for (int i = 0; i < 100; ++i) learner.add({i * 100 * kMs, 0.5, 0.5, 0.5, 10});
  learner.update(30'000 * kMs, cfg, out);
  EXPECT_EQ(learner.size(), 0u);
}

}  // namespace
}  // namespace switchyard::balancer
