#pragma once

#include "switchyard/balancer/strategy.h"
#include "switchyard/balancer/weighted.h"

namespace switchyard::balancer {

// Weighted random: each pick is an independent draw proportional to weight.
class Random final : public Strategy {
 public:
  explicit Random(const std::vector<Endpoint>& endpoints) : draw_(endpoints) {}
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override {
    return draw_.draw(ctx, state, nullptr);
  }

 private:
  WeightedDraw draw_;
};

}  // namespace switchyard::balancer
