#pragma once

// `strategy: least_request`: power of two choices on requests in flight, weighted.

#include <memory>

#include "../common/weighted_draw.h"

namespace switchyard::balancer::least_request {

// Two weighted draws (distinct), the one with fewer requests in flight per unit of weight
// wins. A tie keeps the first draw: when both are idle, the split follows the weights (3:1
// stays 3:1) instead of always favouring the heavier member.
class Table final : public PolicyTable {
 public:
  explicit Table(const Members& members) : members_(members), draw_(members) {}
  uint32_t pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const override;

 private:
  const Members& members_;
  WeightedDraw draw_;
};

std::unique_ptr<Policy> make();

}  // namespace switchyard::balancer::least_request
