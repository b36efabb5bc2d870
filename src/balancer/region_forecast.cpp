#include "region_forecast.h"

#include <algorithm>
#include <chrono>

namespace switchyard::balancer::forecast {

double slope(const EndpointTrend& t) {
  const uint32_t n = std::min<uint32_t>(t.filled, EndpointTrend::kTicks);
  if (n < kMinTrendTicks) return 0;
  // x = 0 .. n-1 (oldest first) in ticks; the ring's oldest of the last n is next - n.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (uint32_t k = 0; k < n; ++k) {
    const size_t at = (t.next + EndpointTrend::kTicks - n + k) % EndpointTrend::kTicks;
    const double x = k;
    const double y = t.latency[at];
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double dn = n;
  const double den = dn * sxx - sx * sx;
  if (den <= 0) return 0;
  return (dn * sxy - sx * sy) / den / kTickSeconds;
}

double health(double predicted_ms, double baseline_ms, double error_rate,
              const config::Locality::Prediction& cfg) {
  double h = 1;
  if (predicted_ms >= 0 && baseline_ms >= 0) {
    const double d = (predicted_ms + kFloorMs) / (baseline_ms + kFloorMs);
    const double onset = (1 + cfg.latency_ratio) / 2;
    h = std::clamp((cfg.latency_ratio - d) / (cfg.latency_ratio - onset), 0.0, 1.0);
  }
  const double e_onset = cfg.error_rate / 2;
  const double h_errors =
      std::clamp((cfg.error_rate - error_rate) / (cfg.error_rate - e_onset), 0.0, 1.0);
  return std::min(h, h_errors);
}

double shortfall(double fraction, double min_healthy) {
  if (fraction <= 0) return 1;
  if (fraction >= min_healthy || min_healthy <= 0) return 0;
  return (min_healthy - fraction) / min_healthy;
}

void observe(EndpointTrend& t, double latency_ms, uint64_t successes, uint64_t failures,
             const config::Locality::Prediction& cfg) {
  // Errors: the failure share of this tick's answers, weighed by how many there were.
  const uint64_t ok = successes - std::min(successes, t.seen_successes);
  const uint64_t bad = failures - std::min(failures, t.seen_failures);
  t.seen_successes = successes;
  t.seen_failures = failures;
  if (ok + bad > 0) {
    const double n = static_cast<double>(ok + bad);
    const double alpha = n / (n + 10);  // ten answers weigh half
    t.error_rate += alpha * (static_cast<double>(bad) / n - t.error_rate);
  }
  if (latency_ms < 0) {  // nothing measured yet: the errors alone
    t.health = health(-1, -1, t.error_rate, cfg);
    return;
  }
  t.latency[t.next] = static_cast<float>(latency_ms);
  t.next = (t.next + 1) % EndpointTrend::kTicks;
  if (t.filled < UINT32_MAX) ++t.filled;
  t.slope_ms_per_s = slope(t);
  const double horizon_s = std::chrono::duration<double>(cfg.horizon).count();
  t.predicted_ms = latency_ms + std::max(t.slope_ms_per_s, 0.0) * horizon_s;
  if (t.baseline_ms < 0 || t.filled <= kWarmupTicks) {
    // Learning the endpoint's normal: follow it both ways.
    t.baseline_ms =
        t.baseline_ms < 0 ? latency_ms : t.baseline_ms + 0.2 * (latency_ms - t.baseline_ms);
    t.health = health(-1, -1, t.error_rate, cfg);
    return;
  }
  const double now_ratio = (latency_ms + kFloorMs) / (t.baseline_ms + kFloorMs);
  const double onset = (1 + cfg.latency_ratio) / 2;
  if (latency_ms < t.baseline_ms) {
    t.baseline_ms += kBaselineFall * (latency_ms - t.baseline_ms);
  } else if (now_ratio < onset &&
             t.slope_ms_per_s * horizon_s < (onset - 1) * (t.baseline_ms + kFloorMs)) {
    // Not degrading: a higher normal is learned slowly (load grows, a deploy is slower).
    t.baseline_ms += kBaselineRise * (latency_ms - t.baseline_ms);
  }
  t.health = health(t.predicted_ms, t.baseline_ms, t.error_rate, cfg);
}

}  // namespace switchyard::balancer::forecast
