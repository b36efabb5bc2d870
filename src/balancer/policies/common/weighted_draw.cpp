#include "weighted_draw.h"

#include <algorithm>

namespace switchyard::balancer {
namespace {
// Draws tried before the linear fallback: with half the members unusable, 4 draws all miss
// with probability 1/16, and the fallback is still correct, only O(n).
constexpr int kDrawAttempts = 4;
}  // namespace

// Walker's alias method (Vose's construction): every draw is one random number and at most
// one table indirection, whatever the weights and n, instead of a binary search over prefix
// sums. Slot i keeps member i with probability prob_[i] (of 2^32) and gives alias_[i] the rest.
WeightedDraw::WeightedDraw(const Members& members) : members_(members) {
  const size_t n = members.size();
  uint64_t sum = 0;
  uniform_ = true;
  for (const auto& m : members) {
    sum += m.endpoint->weight;
    uniform_ = uniform_ && m.endpoint->weight == members.front().endpoint->weight;
  }
  total_ = sum;
  if (uniform_ || n == 0) return;
  prob_.assign(n, 0);
  alias_.assign(n, 0);
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = static_cast<double>(members[i].endpoint->weight) * static_cast<double>(n) /
                static_cast<double>(sum);
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back(), l = large.back();
    small.pop_back();
    prob_[s] = static_cast<uint32_t>(std::min(scaled[s] * 4294967296.0, 4294967295.0));
    alias_[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (uint32_t i : large) prob_[i] = UINT32_MAX;  // full slots (rounding leaves some here)
  for (uint32_t i : small) prob_[i] = UINT32_MAX;
}

uint32_t WeightedDraw::draw(const Filter& filter, WorkerLbState& lb, uint32_t exclude) const {
  if (members_.empty()) return kNone;
  const auto n = static_cast<uint64_t>(members_.size());
  for (int i = 0; i < kDrawAttempts; ++i) {
    // The high bits pick a slot (Lemire's multiply-shift: no division), the low 32 the coin.
    const uint64_t r = lb.next_random();
    auto index = static_cast<uint32_t>((static_cast<unsigned __int128>(r) * n) >> 64);
    if (!uniform_ && static_cast<uint32_t>(r) >= prob_[index]) index = alias_[index];
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
