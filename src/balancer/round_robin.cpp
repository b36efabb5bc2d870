#include "switchyard/balancer/round_robin.h"

#include <numeric>

namespace switchyard::balancer {
namespace {
constexpr uint64_t kMaxCycle = 1 << 20;  // 4 MiB of indices at most
constexpr int kMaxSkips = 16;
}  // namespace

RoundRobin::RoundRobin(const std::vector<Endpoint>& endpoints) : endpoints_(endpoints) {
  if (endpoints.empty()) return;
  uint32_t g = 0;
  uint64_t total = 0;
  for (const auto& ep : endpoints) {
    g = std::gcd(g, ep.weight);
    total += ep.weight;
  }
  total /= g;
  if (total > kMaxCycle) return;  // no table: every pick uses the O(n) walk
  cycle_.reserve(total);
  std::vector<int64_t> current(endpoints.size(), 0);
  for (uint64_t step = 0; step < total; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < endpoints.size(); ++i) {
      current[i] += endpoints[i].weight / g;
      if (current[i] > current[best]) best = i;
    }
    current[best] -= static_cast<int64_t>(total);
    cycle_.push_back(static_cast<uint32_t>(best));
  }
}

const Endpoint* RoundRobin::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (endpoints_.empty()) return nullptr;
  if (!cycle_.empty()) {
    for (int i = 0; i < kMaxSkips; ++i) {
      const Endpoint& ep = endpoints_[cycle_[state.cursor++ % cycle_.size()]];
      if (ep.state->usable() && !ctx.was_tried(ep.index)) return &ep;
    }
  }
  if (const Endpoint* ep = pick_weighted(ctx, state, true)) return ep;
  // Every usable endpoint was tried already: a retry may go back to one.
  return pick_weighted(ctx, state, false);
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
