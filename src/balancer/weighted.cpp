#include "switchyard/balancer/weighted.h"

#include <algorithm>

namespace switchyard::balancer {
namespace {
// Draws tried before the linear fallback: with half the endpoints unusable, 4 draws all miss
// with probability 1/16, and the fallback is still correct, only O(n).
constexpr int kDrawAttempts = 4;
}  // namespace

WeightedDraw::WeightedDraw(const std::vector<Endpoint>& endpoints) : endpoints_(endpoints) {
  uint64_t sum = 0;
  prefix_.reserve(endpoints.size());
  for (const auto& ep : endpoints) {
    sum += ep.weight;
    prefix_.push_back(sum);
  }
}

const Endpoint* WeightedDraw::draw(const PickContext& ctx, WorkerLbState& state,
                                   const Endpoint* exclude) const {
  if (endpoints_.empty()) return nullptr;
  const uint64_t total = prefix_.back();
  for (int i = 0; i < kDrawAttempts; ++i) {
    uint64_t r = state.next_random() % total;
    size_t index =
        static_cast<size_t>(std::upper_bound(prefix_.begin(), prefix_.end(), r) - prefix_.begin());
    const Endpoint& ep = endpoints_[index];
    if (&ep != exclude && ep.state->usable() && !ctx.was_tried(ep.index)) return &ep;
  }
  if (const Endpoint* ep = scan(ctx, state, exclude, true)) return ep;
  return scan(ctx, state, exclude, false);
}

const Endpoint* WeightedDraw::scan(const PickContext& ctx, WorkerLbState& state,
                                   const Endpoint* exclude, bool avoid_tried) const {
  auto eligible = [&](const Endpoint& ep) {
    return &ep != exclude && ep.state->usable() && !(avoid_tried && ctx.was_tried(ep.index));
  };
  uint64_t total = 0;
  for (const auto& ep : endpoints_) {
    if (eligible(ep)) total += ep.weight;
  }
  if (total == 0) return nullptr;
  uint64_t r = state.next_random() % total;
  for (const auto& ep : endpoints_) {
    if (!eligible(ep)) continue;
    if (r < ep.weight) return &ep;
    r -= ep.weight;
  }
  return nullptr;  // unreachable unless usability flipped mid-scan; the caller copes
}

}  // namespace switchyard::balancer
