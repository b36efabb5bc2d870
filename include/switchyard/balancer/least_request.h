#pragma once

#include "switchyard/balancer/strategy.h"
#include "switchyard/balancer/weighted.h"

namespace switchyard::balancer {

// Power of two choices on active requests (Mitzenmacher): draw two distinct endpoints by
// weight, keep the one with fewer active requests per unit of weight. Cheap, and unlike a
// global minimum it does not send every worker's next request to the same endpoint.
class LeastRequest final : public Strategy {
 public:
  explicit LeastRequest(const std::vector<Endpoint>& endpoints) : draw_(endpoints) {}
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;

 private:
  WeightedDraw draw_;
};

}  // namespace switchyard::balancer
