#include "costs.h"

#include <algorithm>
#include <cmath>

namespace switchyard::balancer {
namespace {

// A latency floor: sub-0.1 ms differences are noise, and an estimate of 0 (long idle) must
// still let the in-flight count decide.
constexpr double kFloorMs = 0.1;

}  // namespace

double latency_cost(double estimate_ms, double unmeasured_ms, int64_t active, double weight) {
  const double latency = (estimate_ms < 0 ? unmeasured_ms : estimate_ms) + kFloorMs;
  // latency^1.5: see peak_ewma.h for why not Linkerd's plain product.
  return latency * std::sqrt(latency) * static_cast<double>(std::max<int64_t>(active, 0) + 1) /
         std::max(weight, 1e-3);
}

double load_factor(double score) {
  const double s = std::clamp(score, kMinShareScore, kMaxShareScore);
  const double inverse_headroom = s / (1 - s);
  return inverse_headroom * inverse_headroom;
}

double fused_cost(double latency_cost, double score) { return latency_cost * load_factor(score); }

}  // namespace switchyard::balancer
