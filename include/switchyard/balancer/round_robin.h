#pragma once

#include <vector>

#include "switchyard/balancer/strategy.h"

namespace switchyard::balancer {

// Smooth weighted round robin (the nginx algorithm): each step adds every endpoint's weight to
// its running score, takes the highest, and subtracts the total from the winner. With weights
// {5,1,1} the order is a a b a c a a: the heavy endpoint is interleaved, never burst.
//
// build (control thread): the whole cycle (sum of weights / gcd entries, capped) is computed
// once and shared by every worker. pick: each worker walks the cycle from its own cursor,
// skipping entries whose endpoint is unusable or already tried: O(1) when endpoints are
// healthy. Skipping keeps the remaining endpoints in their weight ratio. After kMaxSkips
// misses in a row (say, a heavy endpoint is down) it falls back to the O(n) nginx walk over
// the usable endpoints, so a pick never fails while one is usable.
class RoundRobin final : public Strategy {
 public:
  explicit RoundRobin(const std::vector<Endpoint>& endpoints);
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;

  // The precomputed cycle, as endpoint indices (exposed for tests).
  const std::vector<uint32_t>& cycle() const { return cycle_; }

 private:
  const Endpoint* pick_weighted(const PickContext& ctx, WorkerLbState& state,
                                bool avoid_tried) const;

  const std::vector<Endpoint>& endpoints_;
  std::vector<uint32_t> cycle_;
};

}  // namespace switchyard::balancer
