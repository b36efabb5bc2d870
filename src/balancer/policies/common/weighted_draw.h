#pragma once

// Weighted random draws over members (Walker's alias method: O(1) per draw), for random,
// least_request, peak_ewma and resource_aware. Private to the balancer.

#include <cstdint>
#include <vector>

#include "switchyard/balancer/policy.h"

namespace switchyard::balancer {

class WeightedDraw {
 public:
  explicit WeightedDraw(const Members& members);

  // An acceptable member drawn with probability proportional to its weight, not `exclude`
  // (kNone for none), or kNone. O(1) normally; falls back to a linear pass when the first
  // draws land on members the filter does not accept.
  uint32_t draw(const Filter& filter, WorkerLbState& lb, uint32_t exclude) const;

 private:
  const Members& members_;
  uint64_t total_ = 0;           // sum of weights
  bool uniform_ = true;          // every weight equal: a uniform draw, no table
  std::vector<uint32_t> prob_;   // alias method: keep slot i with probability prob_/2^32
  std::vector<uint32_t> alias_;  // else take alias_[i]
};

}  // namespace switchyard::balancer
