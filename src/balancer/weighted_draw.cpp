#include "weighted_draw.h"

#include <algorithm>

namespace switchyard::balancer {
namespace {
// Draws tried before the linear fallback: with half the members unusable, 4 draws all miss
// with probability 1/16, and the fallback is still correct, only O(n).
constexpr int kDrawAttempts = 4;
}  // namespace

WeightedDraw::WeightedDraw(const Members& members) : members_(members) {
  uint64_t sum = 0;
  prefix_.reserve(members.size());
  for (const auto& m : members) {
    sum += m.endpoint->weight;
    prefix_.push_back(sum);
  }
}

uint32_t WeightedDraw::draw(const Filter& filter, WorkerLbState& lb, uint32_t exclude) const {
  if (members_.empty()) return kNone;
  const uint64_t total = prefix_.back();
  for (int i = 0; i < kDrawAttempts; ++i) {
    uint64_t r = lb.next_random() % total;
    auto index = static_cast<uint32_t>(std::upper_bound(prefix_.begin(), prefix_.end(), r) -
                                       prefix_.begin());
    if (index != exclude && filter.acceptable(index)) return index;
  }
  uint64_t eligible = 0;
  for (uint32_t i = 0; i < members_.size(); ++i) {
    if (i != exclude && filter.acceptable(i)) eligible += members_[i].endpoint->weight;
  }
  if (eligible == 0) return kNone;
  uint64_t r = lb.next_random() % eligible;
  for (uint32_t i = 0; i < members_.size(); ++i) {
    if (i == exclude || !filter.acceptable(i)) continue;
    const uint64_t w = members_[i].endpoint->weight;
    if (r < w) return i;
    r -= w;
  }
  return kNone;  // unreachable unless usability flipped mid-scan; the caller copes
}

}  // namespace switchyard::balancer
