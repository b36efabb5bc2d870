#pragma once

// Predictive geographic routing (README, "Predictive geographic routing"; `locality.predictive`).
// The locality layer leaves a region once fewer than min_healthy_fraction of its endpoints are
// usable; the requests it serves while they degrade toward that point pay the failover's
// latency spike. Prediction looks at where each endpoint is heading instead:
//
//   every tick (100 ms), per endpoint: its latency (latency_ms, the EWMA of response heads and
//   check round trips the region latency already uses), the trend (least-squares slope over
//   the last 2 s), the predicted latency (latency + max(slope, 0) x horizon), its error share
//   (an EWMA of failures / answers per tick), and its baseline (its own normal latency: it
//   follows a falling latency within about 2 s and a rising one over about 60 s, and not at all
//   while the endpoint degrades);
//
//   predicted health h = min(h_latency, h_errors), each falling linearly from 1 to 0:
//     h_latency over d = (predicted + 5 ms) / (baseline + 5 ms) from (1 + latency_ratio) / 2
//       to latency_ratio (with the default 3: from twice the baseline to three times);
//     h_errors over the error share from error_rate / 2 to error_rate;
//   an endpoint that is not usable has h = 0;
//
//   the region's predicted healthy fraction P = sum(h) / endpoints; below min_healthy_fraction
//   it spills (min_healthy_fraction - P) / min_healthy_fraction of its traffic, the same
//   shortfall rule the usable count follows, and the larger of the two spills applies. A
//   predicted spill falls back over `recovery` (10 s) once the trend clears, slower than it
//   rose: one noisy endpoint costs its region only its own share of P, and a flapping one
//   does not swing the region.
//
// For the first 5 s after an endpoint's first measurement its baseline follows its latency
// both ways and its health stays 1 (nothing is known yet of its normal).

#include <cstdint>

#include "switchyard/balancer/endpoint_load.h"
#include "switchyard/config/config.h"

namespace switchyard::balancer::forecast {

constexpr double kFloorMs = 5.0;             // a few ms of difference is noise (a busy host)
constexpr double kTickSeconds = 0.1;         // the control thread's tick
constexpr uint32_t kWarmupTicks = 50;        // 5 s
constexpr uint32_t kMinTrendTicks = 5;       // a slope needs this many ticks
constexpr double kBaselineFall = 0.05;       // per tick toward a lower latency (~2 s)
constexpr double kBaselineRise = 1.0 / 600;  // per tick toward a higher one (~60 s)

// One tick of an endpoint: records its latency (< 0: unmeasured) and the breaker's totals,
// updates its baseline, trend, prediction and predicted health.
void observe(EndpointTrend& t, double latency_ms, uint64_t successes, uint64_t failures,
             const config::Locality::Prediction& cfg);

// The least-squares slope of the recorded window, ms per second (0 with too few ticks).
double slope(const EndpointTrend& t);

// Predicted health in [0, 1] from a prediction, a baseline and an error share.
double health(double predicted_ms, double baseline_ms, double error_rate,
              const config::Locality::Prediction& cfg);

// The share of a region's traffic to spill for a healthy fraction (usable or predicted).
double shortfall(double fraction, double min_healthy);

}  // namespace switchyard::balancer::forecast
