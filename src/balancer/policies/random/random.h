#pragma once

// `strategy: random`: each pick is an independent draw proportional to weight.

#include <memory>

#include "../common/weighted_draw.h"

namespace switchyard::balancer::random {

class Table final : public PolicyTable {
 public:
  explicit Table(const Members& members) : draw_(members) {}
  uint32_t pick(const PickInput&, const Filter& filter, WorkerLbState& lb) const override {
    return draw_.draw(filter, lb, kNone);
  }

 private:
  WeightedDraw draw_;
};

std::unique_ptr<Policy> make();

}  // namespace switchyard::balancer::random
