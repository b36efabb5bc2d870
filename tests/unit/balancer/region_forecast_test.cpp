#include "balancer/region_forecast.h"

#include <gtest/gtest.h>

namespace switchyard::balancer::forecast {
namespace {

config::Locality::Prediction defaults() {
  config::Locality::Prediction p;
  p.enabled = true;
  return p;
}

// n ticks of a constant latency, no errors.
void steady(EndpointTrend& t, double ms, int n, uint64_t* ok) {
  for (int i = 0; i < n; ++i) observe(t, ms, *ok += 10, 0, defaults());
}

TEST(RegionForecast, HealthFallsLinearlyBetweenOnsetAndRatio) {
  const auto cfg = defaults();  // ratio 3: onset at 2x, floor 5 ms
  EXPECT_DOUBLE_EQ(health(8, 8, 0, cfg), 1);
  EXPECT_DOUBLE_EQ(health(21, 8, 0, cfg), 1);       // (21 + 5) / (8 + 5) = 2: onset
  EXPECT_NEAR(health(27.5, 8, 0, cfg), 0.5, 1e-9);  // 2.5x
  EXPECT_DOUBLE_EQ(health(34, 8, 0, cfg), 0);       // 3x
  EXPECT_DOUBLE_EQ(health(8, 8, 0.25, cfg), 1);     // errors: from 0.25 to 0.5
  EXPECT_NEAR(health(8, 8, 0.375, cfg), 0.5, 1e-9);
  EXPECT_DOUBLE_EQ(health(8, 8, 0.6, cfg), 0);
}

TEST(RegionForecast, ShortfallIsTheUsableRule) {
  EXPECT_DOUBLE_EQ(shortfall(1, 0.5), 0);
  EXPECT_DOUBLE_EQ(shortfall(0.5, 0.5), 0);
  EXPECT_DOUBLE_EQ(shortfall(0.25, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(shortfall(0, 0.5), 1);
}

TEST(RegionForecast, SlopeOfALinearRamp) {
  EndpointTrend t;
  uint64_t ok = 0;
  steady(t, 5, 60, &ok);
  EXPECT_NEAR(t.slope_ms_per_s, 0, 1e-9);
  EXPECT_NEAR(t.baseline_ms, 5, 1e-6);
  EXPECT_DOUBLE_EQ(t.health, 1);
  // +1 ms per tick = +10 ms/s.
  for (int i = 1; i <= 20; ++i) observe(t, 5 + i, ok += 10, 0, defaults());
  EXPECT_NEAR(t.slope_ms_per_s, 10, 1e-6);  // the 2 s window holds only the ramp
  EXPECT_GT(t.predicted_ms, 15);
}

TEST(RegionForecast, ARampIsPredictedBeforeItArrives) {
  // Baseline 5 ms; latency grows 2 ms/s. Health falls while the latency itself is still under
  // twice the baseline (the onset for the current latency alone): the trend says where it goes.
  EndpointTrend t;
  uint64_t ok = 0;
  steady(t, 5, 60, &ok);
  double ms = 5;
  int ticks = 0;
  while (t.health >= 1 && ticks < 200) {
    ms += 0.2;
    observe(t, ms, ok += 10, 0, defaults());
    ++ticks;
  }
  EXPECT_LT(t.health, 1);
  EXPECT_LT(ms, 2 * (5 + kFloorMs) - kFloorMs);  // before the current latency reached 2x
  EXPECT_NEAR(t.baseline_ms, 5, 0.25);           // the baseline did not chase the ramp
}

TEST(RegionForecast, ErrorsLowerHealthAndRecover) {
  EndpointTrend t;
  uint64_t ok = 0, bad = 0;
  steady(t, 5, 60, &ok);
  for (int i = 0; i < 20; ++i) observe(t, 5, ok += 2, bad += 8, defaults());
  EXPECT_GT(t.error_rate, 0.7);
  EXPECT_DOUBLE_EQ(t.health, 0);
  for (int i = 0; i < 40; ++i) observe(t, 5, ok += 10, bad, defaults());
  EXPECT_LT(t.error_rate, 0.05);
  EXPECT_DOUBLE_EQ(t.health, 1);
}

TEST(RegionForecast, WarmUpTrustsNothing) {
  EndpointTrend t;
  uint64_t ok = 0;
  for (int i = 0; i < 30; ++i) observe(t, 5 + 3 * i, ok += 10, 0, defaults());
  EXPECT_DOUBLE_EQ(t.health, 1);  // a rising start-up latency is its normal so far
}

TEST(RegionForecast, ASlowNormalIsLearnedSlowly) {
  EndpointTrend t;
  uint64_t ok = 0;
  steady(t, 5, 60, &ok);
  steady(t, 7, 1200, &ok);  // 120 s at 7 ms: under the onset, not degrading
  EXPECT_GT(t.baseline_ms, 6.5);
  EXPECT_DOUBLE_EQ(t.health, 1);
}

}  // namespace
}  // namespace switchyard::balancer::forecast
