#include "switchyard/balancer/round_robin.h"

namespace switchyard::balancer {

RoundRobin::RoundRobin(const std::vector<Endpoint>& endpoints) : endpoints_(endpoints) {
  for (const auto& ep : endpoints) {
    if (ep.weight != endpoints.front().weight) uniform_ = false;
  }
}

const Endpoint* RoundRobin::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (endpoints_.empty()) return nullptr;
  const Endpoint* ep =
      uniform_ ? pick_uniform(ctx, state, true) : pick_weighted(ctx, state, true);
  if (ep != nullptr || ctx.tried.empty()) return ep;
  // Every usable endpoint was tried already: a retry may go back to one.
  return uniform_ ? pick_uniform(ctx, state, false) : pick_weighted(ctx, state, false);
}

const Endpoint* RoundRobin::pick_uniform(const PickContext& ctx, WorkerLbState& state,
                                         bool avoid_tried) const {
  const size_t n = endpoints_.size();
  for (size_t i = 0; i < n; ++i) {
    const Endpoint& ep = endpoints_[state.cursor++ % n];
    if (ep.state->usable() && !(avoid_tried && ctx.was_tried(ep.index))) return &ep;
  }
  return nullptr;
}

const Endpoint* RoundRobin::pick_weighted(const PickContext& ctx, WorkerLbState& state,
                                          bool avoid_tried) const {
  int64_t total = 0;
  const Endpoint* best = nullptr;
  for (const auto& ep : endpoints_) {
    if (!ep.state->usable() || (avoid_tried && ctx.was_tried(ep.index))) continue;
    int64_t& current = state.current_weight[ep.index];
    current += ep.weight;
    total += ep.weight;
    if (best == nullptr || current > state.current_weight[best->index]) best = &ep;
  }
  if (best != nullptr) state.current_weight[best->index] -= total;
  return best;
}

}  // namespace switchyard::balancer
