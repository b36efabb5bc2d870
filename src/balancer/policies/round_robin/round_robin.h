#pragma once

// `strategy: round_robin`.

#include <memory>
#include <vector>

#include "switchyard/balancer/policy.h"

namespace switchyard::balancer::round_robin {

// Smooth weighted round robin (the nginx algorithm): each step adds every member's weight to
// its running score, takes the highest, and subtracts the total from the winner. With weights
// {5,1,1} the order is a a b a c a a: the heavy member is interleaved, never burst.
//
// build (control thread): the whole cycle (sum of weights / gcd entries, capped) is computed
// once and shared by every worker. pick: each worker walks the cycle from its own cursor,
// skipping entries the filter does not accept: O(1) when members are healthy. Skipping keeps
// the remaining members in their weight ratio. After kMaxSkips misses in a row (say, a heavy
// member is down) it falls back to the O(n) nginx walk over the acceptable members, so a pick
// never fails while one is acceptable.
class Table final : public PolicyTable {
 public:
  explicit Table(const Members& members);
  uint32_t pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const override;

  // The precomputed cycle, as member indices (exposed for tests).
  const std::vector<uint32_t>& cycle() const { return cycle_; }

 private:
  const Members& members_;
  std::vector<uint32_t> cycle_;
};

std::unique_ptr<Policy> make();

}  // namespace switchyard::balancer::round_robin
