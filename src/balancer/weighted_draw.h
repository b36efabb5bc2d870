#pragma once

// Weighted random draws over members (prefix sums + binary search), for random and
// least_request. Private to the balancer.

#include <cstdint>
#include <vector>

#include "switchyard/balancer/policy.h"

namespace switchyard::balancer {

class WeightedDraw {
 public:
  explicit WeightedDraw(const Members& members);

  // An acceptable member drawn with probability proportional to its weight, not `exclude`
  // (kNone for none), or kNone. O(log n) normally; falls back to a linear pass when the first
  // draws land on members the filter does not accept.
  uint32_t draw(const Filter& filter, WorkerLbState& lb, uint32_t exclude) const;

 private:
  const Members& members_;
  std::vector<uint64_t> prefix_;  // prefix_[i] = sum of weights of members 0..i
};

}  // namespace switchyard::balancer
