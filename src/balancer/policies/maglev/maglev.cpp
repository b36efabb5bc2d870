#include "maglev.h"

#include <algorithm>
#include <numeric>

namespace switchyard::balancer::maglev {
namespace {

// Maps a 64-bit hash onto [0, m) by multiplication (Lemire's fastrange): no division.
uint64_t reduce(uint64_t h, uint64_t m) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(h) * m) >> 64);
}

class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "maglev"; }
  std::unique_ptr<PolicyTable> build(const config::Cluster& cluster, const Members& members,
                                     const ClusterState&) const override {
    return std::make_unique<Table>(cluster, members);
  }
  PolicyTraits traits(const config::Cluster& c) const override { return hashing::traits_of(c); }
  std::vector<std::string> reads() const override { return {hashing::kBlock}; }
};

}  // namespace

std::unique_ptr<balancer::Policy> make() { return std::make_unique<Policy>(); }

uint64_t next_prime(uint64_t n) {
  auto prime = [](uint64_t x) {
    if (x < 2) return false;
    for (uint64_t d = 2; d * d <= x; ++d) {
      if (x % d == 0) return false;
    }
    return true;
  };
  while (!prime(n)) ++n;
  return n;
}

Table::Table(const config::Cluster& cluster, const Members& members)
    : members_(members.size()), key_(SipKey::from_seed(hashing::config_of(cluster).seed)) {
  if (members.empty()) return;
  uint64_t m = std::max<uint64_t>(65537, next_prime(100 * members.size()));
  table_.assign(m, UINT32_MAX);
  // Turns per round proportional to weight (weights divided by their gcd).
  uint32_t g = 0;
  for (const auto& mb : members) g = std::gcd(g, mb.endpoint->weight);
  struct Perm {
    uint64_t slot, skip;  // the permutation's next candidate slot, and its step
    uint32_t turns;
  };
  std::vector<Perm> perms;
  // Endpoints take turns in address order, so that the config order never matters.
  std::vector<uint32_t> order(members.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return members[a].endpoint->address_text < members[b].endpoint->address_text;
  });
  for (uint32_t i : order) {
    const auto& ep = *members[i].endpoint;
    uint64_t offset = siphash13(key_, ep.address_text, 0xA11CE) % m;
    uint64_t skip = siphash13(key_, ep.address_text, 0xB0B) % (m - 1) + 1;
    perms.push_back(Perm{offset, skip, ep.weight / g});
  }
  uint64_t filled = 0;
  while (filled < m) {
    for (size_t k = 0; k < perms.size() && filled < m; ++k) {
      auto& p = perms[k];
      for (uint32_t t = 0; t < p.turns && filled < m; ++t) {
        // permutation[j] = (offset + j * skip) mod M, stepped without a division.
        auto advance = [&] {
          p.slot = p.slot + p.skip >= m ? p.slot + p.skip - m : p.slot + p.skip;
        };
        while (table_[p.slot] != UINT32_MAX) advance();
        table_[p.slot] = order[k];
        advance();
        ++filled;
      }
    }
  }
}

uint32_t Table::pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const {
  if (table_.empty()) return kNone;
  uint64_t h = hashing::key_hash(key_, in, lb);
  const size_t m = table_.size();
  // The key's own slot, then up to 16 rehashes (salted by the round), then a walk. The pass
  // that accepts any usable member goes straight to the walk.
  if (filter.strict()) {
    for (uint64_t round = 0; round <= 16; ++round) {
      uint64_t slot =
          round == 0
              ? reduce(h, m)
              : reduce(
                    siphash13(key_, std::string_view(reinterpret_cast<const char*>(&h), 8), round),
                    m);
      if (filter.acceptable(table_[slot])) return table_[slot];
    }
  }
  for (size_t i = 0; i < members_; ++i) {
    const uint32_t member = static_cast<uint32_t>((h + i) % members_);
    if (filter.acceptable(member)) return member;
  }
  return kNone;
}

}  // namespace switchyard::balancer::maglev
