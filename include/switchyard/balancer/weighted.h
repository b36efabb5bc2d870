#pragma once

#include <cstdint>
#include <vector>

#include "switchyard/balancer/strategy.h"

namespace switchyard::balancer {

// Weighted random draws over an endpoint list (prefix sums + binary search), skipping endpoints
// that are unusable or already tried. Shared by random and least_request.
class WeightedDraw {
 public:
  explicit WeightedDraw(const std::vector<Endpoint>& endpoints);

  // A usable endpoint drawn with probability proportional to its weight, not equal to
  // `exclude` (pass nullptr for none). Prefers endpoints not yet tried by ctx. O(log n)
  // normally; falls back to a linear pass when the first draws land on unusable endpoints.
  const Endpoint* draw(const PickContext& ctx, WorkerLbState& state, const Endpoint* exclude) const;

 private:
  const Endpoint* scan(const PickContext& ctx, WorkerLbState& state, const Endpoint* exclude,
                       bool avoid_tried) const;

  const std::vector<Endpoint>& endpoints_;
  std::vector<uint64_t> prefix_;  // prefix_[i] = sum of weights of endpoints 0..i
};

}  // namespace switchyard::balancer
