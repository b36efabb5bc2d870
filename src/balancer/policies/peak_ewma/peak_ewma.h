#pragma once

// `strategy: peak_ewma` (extension; README, "Latency-aware balancing"): power of two choices on
// cost = peak-EWMA latency x (requests in flight + 1) / weight, as Finagle's and Linkerd's
// balancers pick (Linkerd's "EWMA" balancer, tower::load::PeakEwma with P2C). For clusters
// whose endpoints send no load reports: what each endpoint's answers took, and how many it
// holds now, say how long the next request would wait there. Failures count as slow (a penalty
// sample, balancer::PeakEwma), so an endpoint that fails fast is not mistaken for a fast one.

#include <memory>

#include "../../weighted_draw.h"

namespace switchyard::balancer::peak_ewma {

// The cost of sending one more request to an endpoint: its latency estimate (ms; an
// unmeasured one borrows `unmeasured_ms`, so that a new endpoint competes on its in-flight
// count) times (active + 1), per unit of weight (the slow-start weight, effective_weight()).
// Pure.
double cost(double estimate_ms, double unmeasured_ms, int64_t active, double weight);

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
