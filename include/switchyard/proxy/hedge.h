#pragma once

// Hedged requests (README, "Hedged requests"; Dean & Barroso, "The Tail at Scale", CACM 2013):
// when a try has not answered within the route's hedge delay, a backup try goes to another
// endpoint and the first answer wins. The delay is fixed or a percentile of what the cluster's
// responses took lately, which this worker measures itself (no lock): a decaying histogram of
// the time to the response head. Pure; no Asio.

#include <array>
#include <cstdint>

#include "switchyard/config/config.h"

namespace switchyard::proxy {

// A per-worker, per-cluster latency distribution: 128 buckets 10% wide from 0.1 ms (to ~18 s,
// the last bucket open-ended). Counts halve every kDecayAt samples, so the quantiles follow
// the last few thousand responses.
class LatencyQuantiles {
 public:
  static constexpr int kBuckets = 128;
  static constexpr uint32_t kDecayAt = 4096;
  static constexpr uint32_t kMinSamples = 20;

  void add(double ms);
  // The q-quantile (0..1) in ms (the upper edge of its bucket), or -1 with fewer than
  // kMinSamples samples. Recomputed at most every 32 samples for the same q.
  double quantile(double q);
  uint32_t samples() const { return total_; }

 private:
  std::array<uint32_t, kBuckets> counts_{};
  uint32_t total_ = 0;
  double cached_q_ = -1;
  double cached_ms_ = -1;
  uint32_t since_cached_ = 0;
};

// The bucket of a latency, and the upper edge of a bucket in ms.
int latency_bucket(double ms);
double bucket_upper_ms(int bucket);

// The hedge delay of a route now: its fixed delay, or its percentile of `seen` (at least
// min_delay). 0: do not hedge (a percentile without enough samples yet).
Duration hedge_delay(const config::Hedge& hedge, LatencyQuantiles& seen);

}  // namespace switchyard::proxy
