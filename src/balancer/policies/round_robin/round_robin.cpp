#include "round_robin.h"

#include <numeric>

namespace switchyard::balancer::round_robin {
namespace {

constexpr uint64_t kMaxCycle = 1 << 20;  // 4 MiB of indices at most
constexpr int kMaxSkips = 16;

class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "round_robin"; }
  std::unique_ptr<PolicyTable> build(const config::Cluster&, const Members& members,
                                     const ClusterState&) const override {
    return std::make_unique<Table>(members);
  }
};

}  // namespace

std::unique_ptr<balancer::Policy> make() { return std::make_unique<Policy>(); }

Table::Table(const Members& members) : members_(members) {
  if (members.empty()) return;
  uint32_t g = 0;
  uint64_t total = 0;
  for (const auto& m : members) {
    g = std::gcd(g, m.endpoint->weight);
    total += m.endpoint->weight;
  }
  total /= g;
  if (total > kMaxCycle) return;  // no table: every pick uses the O(n) walk
  cycle_.reserve(total);
  std::vector<int64_t> current(members.size(), 0);
  for (uint64_t step = 0; step < total; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      current[i] += members[i].endpoint->weight / g;
      if (current[i] > current[best]) best = i;
    }
    current[best] -= static_cast<int64_t>(total);
    cycle_.push_back(static_cast<uint32_t>(best));
  }
}

uint32_t Table::pick(const PickInput&, const Filter& filter, WorkerLbState& lb) const {
  if (members_.empty()) return kNone;
  if (!cycle_.empty()) {
    for (int i = 0; i < kMaxSkips; ++i) {
      const uint32_t m = cycle_[lb.cursor++ % cycle_.size()];
      if (filter.acceptable(m)) return m;
    }
  }
  // The nginx walk over the acceptable members.
  int64_t total = 0;
  uint32_t best = kNone;
  for (uint32_t i = 0; i < members_.size(); ++i) {
    if (!filter.acceptable(i)) continue;
    const int64_t weight = members_[i].endpoint->weight;
    int64_t& current = lb.current_weight[i];
    current += weight;
    total += weight;
    if (best == kNone || current > lb.current_weight[best]) best = i;
  }
  if (best != kNone) lb.current_weight[best] -= total;
  return best;
}

}  // namespace switchyard::balancer::round_robin
