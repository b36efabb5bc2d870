#pragma once

// `strategy: peak_ewma` (extension; README, "Latency-aware balancing"): power of two choices on
// cost = latency^1.5 x (requests in flight + 1) / weight, latency being the peak-EWMA estimate
// (Finagle's and Linkerd's balancers; tower::load::PeakEwma with P2C). For clusters whose
// endpoints send no load reports: what each endpoint's answers took, and how many it holds
// now, say how long the next request would wait there. Failures count as slow (a penalty
// sample, balancer::PeakEwma), so an endpoint that fails fast is not mistaken for a fast one.
//
// Why latency^1.5 and not Linkerd's latency x (in flight + 1): that product prices each request
// in flight as one whole service time of waiting, which is right for a backend that serves one
// request at a time. Real backends serve several at once (a thread pool, slots), so the product
// overstates the queue of a busy fast endpoint and sends a slow one more than it can serve
// without queueing; its answers then set the tail. Weighing latency by its 1.5th power
// (equivalently, in-flight by its 2/3rd) measured best on ../shared/bench/hetero_bench.sh:
// two 5 ms backends and one of 15 ms, 8 slots each, p99 0.57x / 0.51x / 0.52x HAProxy
// leastconn's for exponents 1 / 1.5 / 2, at 1.01x / 0.99x / 0.97x its req/s (README).

#include <memory>

#include "../common/costs.h"
#include "../common/weighted_draw.h"

namespace switchyard::balancer::peak_ewma {

// The cost: latency_cost (policies/common/costs.h).

// Two weighted draws (distinct); the lower cost wins, a tie keeps the first draw (so idle
// endpoints split by weight). No lock, no allocation: two reads of each endpoint's atomics.
class Table final : public PolicyTable {
 public:
  explicit Table(const Members& members) : members_(members), draw_(members) {}
  uint32_t pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const override;

 private:
  const Members& members_;
  WeightedDraw draw_;
};

std::unique_ptr<Policy> make();

}  // namespace switchyard::balancer::peak_ewma
