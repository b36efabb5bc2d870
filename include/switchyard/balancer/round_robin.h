#pragma once

#include "switchyard/balancer/strategy.h"

namespace switchyard::balancer {

// Smooth weighted round robin (the nginx algorithm): each pick adds every usable endpoint's
// weight to its running score, takes the highest, and subtracts the total from the winner. With
// weights {5,1,1} the order is a a b a c a a: the heavy endpoint is interleaved, never burst.
// When all weights are equal it degenerates to a rotating cursor (O(1) per pick).
class RoundRobin final : public Strategy {
 public:
  explicit RoundRobin(const std::vector<Endpoint>& endpoints);
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;

 private:
  const Endpoint* pick_uniform(const PickContext& ctx, WorkerLbState& state,
                               bool avoid_tried) const;
  const Endpoint* pick_weighted(const PickContext& ctx, WorkerLbState& state,
                                bool avoid_tried) const;

  const std::vector<Endpoint>& endpoints_;
  bool uniform_ = true;
};

}  // namespace switchyard::balancer
