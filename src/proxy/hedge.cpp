#include "switchyard/proxy/hedge.h"

#include <algorithm>
#include <cmath>

namespace switchyard::proxy {
namespace {
constexpr double kFirstMs = 0.1;
constexpr double kGrowth = 1.1;
const double kLogGrowth = std::log(kGrowth);
}  // namespace

int latency_bucket(double ms) {
  if (!(ms > kFirstMs)) return 0;
  const int b = static_cast<int>(std::ceil(std::log(ms / kFirstMs) / kLogGrowth));
  return std::clamp(b, 0, LatencyQuantiles::kBuckets - 1);
}

double bucket_upper_ms(int bucket) { return kFirstMs * std::pow(kGrowth, bucket); }

void LatencyQuantiles::add(double ms) {
  ++counts_[static_cast<size_t>(latency_bucket(ms))];
  ++total_;
  ++since_cached_;
  if (total_ >= kDecayAt) {
    total_ = 0;
    for (auto& c : counts_) {
      c /= 2;
      total_ += c;
    }
  }
}

double LatencyQuantiles::quantile(double q) {
  if (total_ < kMinSamples) return -1;
  if (q == cached_q_ && since_cached_ < 32) return cached_ms_;
  const double need = q * total_;
  double acc = 0;
  int b = 0;
  for (; b < kBuckets; ++b) {
    acc += counts_[static_cast<size_t>(b)];
    if (acc >= need) break;
  }
  cached_q_ = q;
  cached_ms_ = bucket_upper_ms(std::min(b, kBuckets - 1));
  since_cached_ = 0;
  return cached_ms_;
}

Duration hedge_delay(const config::Hedge& hedge, LatencyQuantiles& seen) {
  if (hedge.percentile <= 0) return hedge.delay;
  const double ms = seen.quantile(hedge.percentile / 100);
  if (ms < 0) return Duration(0);
  return std::max(hedge.min_delay, Duration(static_cast<int64_t>(std::ceil(ms))));
}

}  // namespace switchyard::proxy
