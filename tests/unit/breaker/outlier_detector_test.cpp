#include "switchyard/breaker/outlier_detector.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace switchyard::breaker {
namespace {

using Breaker = Position;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A cluster of `n` endpoints with a circuit breaker of `limit` consecutive failures, 1 s base
// ejection, 4 s max, and the given ejected fraction.
struct Fixture {
  explicit Fixture(int n, double fraction = 0.5, int limit = 3) {
    config.consecutive_failures = static_cast<uint32_t>(limit);
    config.base_ejection = 1s;
    config.max_ejection = 4s;
    config.max_ejected_fraction = fraction;
    OutlierDetector::Cluster cluster{"app", config, {}, detector.stats("app")};
    for (int i = 0; i < n; ++i) {
      std::string address = "127.0.0.1:" + std::to_string(9001 + i);
      auto b = detector.state(std::string("app") + '\0' + address);
      states.push_back(b);
      cluster.members.push_back({b, address});
    }
    std::vector<OutlierDetector::Cluster> clusters;
    clusters.push_back(std::move(cluster));
    detector.update(std::move(clusters));
  }
  EndpointBreaker& state(int i) { return *states[i]; }
  // `count` failures on endpoint i, evaluated as the worker's notification would be.
  void fail(int i, int count, Clock::time_point now) {
    for (int k = 0; k < count; ++k) {
      if (record_failure(state(i), 3, false)) detector.evaluate(state(i), now);
    }
  }

  config::CircuitBreaker config;
  boost::asio::io_context ioc;
  OutlierDetector detector{ioc};
  std::vector<std::shared_ptr<EndpointBreaker>> states;
};

TEST(Breaker, EjectsAfterConsecutiveFailuresOnly) {
  Fixture f(4);
  auto now = Clock::now();
  f.fail(0, 2, now);
  EXPECT_TRUE(record_success(f.state(0), false) == false);  // a success breaks the run
  f.fail(0, 2, now);
  EXPECT_EQ(f.state(0).position, Breaker::kClosed);
  f.fail(0, 1, now);
  EXPECT_EQ(f.state(0).position, Breaker::kOpen);
  EXPECT_FALSE(f.state(0).admits());
  EXPECT_EQ(f.state(0).failures, 5u);
  EXPECT_EQ(f.state(0).successes, 1u);
}

// Open for base_ejection, then half-open: exactly one request may claim the trial; its
// success closes the breaker.
TEST(Breaker, HalfOpenTrialReadmits) {
  Fixture f(4);
  auto now = Clock::now();
  f.fail(1, 3, now);
  ASSERT_EQ(f.state(1).position, Breaker::kOpen);
  f.detector.tick(now + 900ms);
  EXPECT_EQ(f.state(1).position, Breaker::kOpen);
  f.detector.tick(now + 1001ms);
  EXPECT_EQ(f.state(1).position, Breaker::kHalfOpen);
  EXPECT_TRUE(f.state(1).admits());
  EXPECT_TRUE(claim_trial(f.state(1)));
  EXPECT_FALSE(claim_trial(f.state(1)));  // a second request does not get it
  EXPECT_FALSE(f.state(1).admits());
  EXPECT_TRUE(record_success(f.state(1), true));
  f.detector.evaluate(f.state(1), now + 1002ms);
  EXPECT_EQ(f.state(1).position, Breaker::kClosed);
  EXPECT_EQ(f.state(1).ejected_until, Clock::time_point{});
}

// A failed trial ejects again for twice as long, up to max_ejection.
TEST(Breaker, FailedTrialDoublesEjection) {
  Fixture f(4);
  auto now = Clock::now();
  f.fail(2, 3, now);
  std::chrono::milliseconds expected[] = {2000ms, 4000ms, 4000ms};
  for (auto want : expected) {
    now = f.state(2).ejected_until;
    f.detector.tick(now);
    ASSERT_TRUE(claim_trial(f.state(2)));
    ASSERT_TRUE(record_failure(f.state(2), 3, true));
    f.detector.evaluate(f.state(2), now);
    EXPECT_EQ(f.state(2).position, Breaker::kOpen);
    EXPECT_EQ(f.state(2).ejected_until - now, want);
  }
  EXPECT_EQ(ejection_time(f.config, 0), 1000ms);
}

// A trial abandoned without an outcome lets the next request be the trial.
TEST(Breaker, AbandonedTrialReturnsToHalfOpen) {
  Fixture f(2, 1.0);
  auto now = Clock::now();
  f.fail(0, 3, now);
  f.detector.tick(now + 2s);
  ASSERT_TRUE(claim_trial(f.state(0)));
  abandon_trial(f.state(0));
  EXPECT_EQ(f.state(0).position, Breaker::kHalfOpen);
}

// Never more than max_ejected_fraction of the cluster (rounded down) out at once.
TEST(Breaker, EjectedFractionIsCapped) {
  Fixture f(4, 0.5);
  auto now = Clock::now();
  for (int i = 0; i < 4; ++i) f.fail(i, 3, now);
  int ejected = 0;
  for (int i = 0; i < 4; ++i) ejected += f.state(i).ejected() ? 1 : 0;
  EXPECT_EQ(ejected, 2);
  EXPECT_TRUE(f.state(2).admits());
  EXPECT_TRUE(f.state(3).admits());
  Fixture single(1, 0.5);
  single.fail(0, 10, now);
  EXPECT_EQ(single.state(0).position, Breaker::kClosed);  // floor(0.5 * 1) = 0
}

// A passing check ends an ejection early (half-open); a half-open endpoint that no request
// tried is decided by the next check.
TEST(Breaker, ChecksEndEjectionEarly) {
  Fixture f(4);
  auto now = Clock::now();
  f.fail(3, 3, now);
  f.detector.on_check(f.state(3), false);
  EXPECT_EQ(f.state(3).position, Breaker::kOpen);
  f.detector.on_check(f.state(3), true);
  EXPECT_EQ(f.state(3).position, Breaker::kHalfOpen);
  f.detector.on_check(f.state(3), true);
  EXPECT_EQ(f.state(3).position, Breaker::kClosed);
  f.fail(3, 3, now);
  f.detector.on_check(f.state(3), true);
  f.detector.on_check(f.state(3), false);  // half-open, check fails: out again, longer
  EXPECT_EQ(f.state(3).position, Breaker::kOpen);
  EXPECT_EQ(f.state(3).ejections, 3u);  // three ejections in a row: the next lasts 4 s
}

// consecutive_failures: 0 turns ejection off.
TEST(Breaker, ZeroLimitNeverEjects) {
  EndpointBreaker s;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(record_failure(s, 0, false));
  EXPECT_EQ(s.position, Breaker::kClosed);
}

TEST(HealthScore, EwmaOfOutcomes) {
  EXPECT_DOUBLE_EQ(next_health_score(1.0, 0, 0), 1.0);  // nothing seen: unchanged
  EXPECT_DOUBLE_EQ(next_health_score(1.0, 10, 0), 1.0);
  EXPECT_DOUBLE_EQ(next_health_score(1.0, 5, 5), 1.0 - kHealthScoreAlpha * 0.5);
  double s = 1.0;
  for (int i = 0; i < 100; ++i) s = next_health_score(s, 0, 10);
  EXPECT_DOUBLE_EQ(s, kMinHealthScore);  // stays in (0, 1]
  for (int i = 0; i < 30; ++i) s = next_health_score(s, 10, 0);
  EXPECT_GT(s, 0.99);
}

// The detector folds request outcomes and check results into each endpoint's score.
TEST(HealthScore, DetectorUpdatesScores) {
  Fixture f(2, 0.5, 0);
  for (int i = 0; i < 10; ++i) record_failure(f.state(0), 0, false);
  for (int i = 0; i < 10; ++i) record_success(f.state(1), false);
  f.detector.on_check(f.state(1), false);
  f.detector.update_health_scores();
  EXPECT_DOUBLE_EQ(f.state(0).health_score, 1.0 - kHealthScoreAlpha);
  EXPECT_NEAR(f.state(1).health_score, 1.0 - kHealthScoreAlpha / 11, 1e-9);
  f.detector.update_health_scores();  // nothing new: unchanged
  EXPECT_DOUBLE_EQ(f.state(0).health_score, 1.0 - kHealthScoreAlpha);
}

// --- rate detectors ----------------------------------------------------------------------

// Envoy's success-rate rule: below mean - stdev_factor x stdev of the endpoints with enough
// requests, when enough endpoints have them.
TEST(RateDetectors, SuccessRateFindsTheOutlier) {
  config::SuccessRateEjection cfg;  // 3 hosts, 100 requests, 1.9
  std::vector<RateSample> s{{200, 0}, {200, 0}, {200, 0}, {200, 60}};
  // rates 1, 1, 1, .70: mean .925, stdev .130, threshold .678: none below with 1.9...
  EXPECT_TRUE(success_rate_outliers(s, cfg).empty());
  cfg.stdev_factor = 1.0;  // threshold .795: the fourth
  EXPECT_EQ(success_rate_outliers(s, cfg), std::vector<size_t>{3});
  s[3].requests = 99;  // too few requests: not judged; the three left are all alike
  EXPECT_TRUE(success_rate_outliers(s, cfg).empty());
  cfg.minimum_hosts = 4;
  s[3].requests = 200;
  s[0].requests = 50;  // three with enough requests: fewer than minimum_hosts
  EXPECT_TRUE(success_rate_outliers(s, cfg).empty());
}

TEST(RateDetectors, FailurePercentageAboveTheThreshold) {
  config::FailurePercentageEjection cfg;  // 85%, 3 hosts, 50 requests
  std::vector<RateSample> s{{100, 0}, {100, 84}, {100, 85}, {40, 40}};
  EXPECT_EQ(failure_percentage_outliers(s, cfg), std::vector<size_t>{2});  // not 84, not 40/40
  cfg.minimum_hosts = 4;
  EXPECT_TRUE(failure_percentage_outliers(s, cfg).empty());
}

// The detector judges the outcomes since its last look, ejects through max_ejected_fraction,
// and with split_local_origin judges resets apart from 5xx.
TEST(RateDetectors, EvaluateRatesEjectsAndRespectsTheFraction) {
  Fixture f(4, 0.25, 0);
  f.config.failure_percentage = config::FailurePercentageEjection{};
  std::vector<OutlierDetector::Cluster> clusters;
  OutlierDetector::Cluster c{"app", f.config, {}, f.detector.stats("app")};
  for (int i = 0; i < 4; ++i) c.members.push_back({f.states[i], "ep" + std::to_string(i)});
  clusters.push_back(std::move(c));
  f.detector.update(std::move(clusters));
  auto now = Clock::now();
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < 100; ++k) {
      if (i >= 2 && k < 90) {
        record_failure(f.state(i), 0, false);
      } else {
        record_success(f.state(i), false);
      }
    }
  }
  f.detector.evaluate_rates(0, now);
  // Both 90% endpoints are outliers; max_ejected_fraction 0.25 of 4 lets one out.
  EXPECT_EQ(f.state(2).position, Breaker::kOpen);
  EXPECT_EQ(f.state(3).position, Breaker::kClosed);
  EXPECT_EQ(f.detector.stats("app")->counters.value(ClusterStats::kEjectionsFailurePercentage), 1u);
  EXPECT_EQ(f.detector.stats("app")->counters.value(ClusterStats::kEjectionsSkipped), 1u);
  // The next look sees only what came since: nothing.
  f.detector.evaluate_rates(0, now + 1s);
  EXPECT_EQ(f.state(3).position, Breaker::kClosed);
}

TEST(RateDetectors, LocalOriginRunsAreCountedApart) {
  EndpointBreaker s;
  // Split: resets run against the local limit (3); 5xx against consecutive_failures (5).
  EXPECT_FALSE(record_failure(s, 5, false, /*local_origin=*/true, true, 3));
  EXPECT_FALSE(record_failure(s, 5, false, false, true, 3));  // a 5xx: its own run
  EXPECT_FALSE(record_failure(s, 5, false, true, true, 3));
  EXPECT_TRUE(record_failure(s, 5, false, true, true, 3));  // third reset in a row
  EXPECT_EQ(s.consecutive_failures, 1u);
  EXPECT_EQ(s.local_failures, 3u);
  EXPECT_EQ(s.failures, 4u);
}

}  // namespace
}  // namespace switchyard::breaker
