#include "switchyard/balancer/hash_ring.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace switchyard::balancer {
namespace {

// A request key is hashed on at most this many bytes (README: hash keys).
constexpr size_t kMaxKeyBytes = 256;

uint64_t key_hash(const SipKey& key, const PickContext& ctx, WorkerLbState& state) {
  if (!ctx.has_hash_key) return state.next_random();  // on_missing_key: random
  return siphash13(key, ctx.hash_key.substr(0, kMaxKeyBytes));
}

// Whether a pick may land on ep: `strict` also requires not tried and under the cap.
bool acceptable(const Endpoint& ep, const PickContext& ctx, int64_t cap, bool strict) {
  if (!ep.state->usable()) return false;
  if (!strict) return true;
  if (ctx.was_tried(ep.index)) return false;
  return cap == 0 || ep.state->active_requests.load(std::memory_order_relaxed) < cap;
}

}  // namespace

int64_t bounded_load_cap(double factor, int64_t in_flight, uint32_t usable) {
  if (factor <= 0 || usable == 0) return 0;
  return static_cast<int64_t>(
      std::ceil(factor * static_cast<double>(std::max<int64_t>(in_flight, 0) + 1) / usable));
}

HashRing::HashRing(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints)
    : endpoints_(endpoints),
      key_(SipKey::from_seed(cluster.hash.seed)),
      bounded_load_(cluster.hash.bounded_load) {
  size_t total = 0;
  for (const auto& ep : endpoints) total += size_t{cluster.hash.virtual_nodes} * ep.weight;
  ring_.reserve(total);
  for (const auto& ep : endpoints) {
    uint64_t n = uint64_t{cluster.hash.virtual_nodes} * ep.weight;
    for (uint64_t v = 0; v < n; ++v) {
      ring_.push_back(Point{siphash13(key_, ep.address_text, v), ep.index});
    }
  }
  // Equal hashes (astronomically rare) are ordered by address, so that the config order never
  // matters.
  std::sort(ring_.begin(), ring_.end(), [&](const Point& a, const Point& b) {
    if (a.hash != b.hash) return a.hash < b.hash;
    return endpoints[a.endpoint].address_text < endpoints[b.endpoint].address_text;
  });
}

const Endpoint* HashRing::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (ring_.empty()) return nullptr;
  uint64_t h = key_hash(key_, ctx, state);
  size_t start =
      static_cast<size_t>(std::lower_bound(ring_.begin(), ring_.end(), h,
                                           [](const Point& p, uint64_t x) { return p.hash < x; }) -
                          ring_.begin());
  int64_t cap = bounded_load_cap(bounded_load_, ctx.cluster_in_flight, ctx.usable_endpoints);
  // Walk on from the key's point: first for an endpoint that is usable, untried and under
  // its cap; if the whole ring has none, for any usable one.
  for (bool strict : {true, false}) {
    for (size_t i = 0, n = ring_.size(); i < n; ++i) {
      const Endpoint& ep = endpoints_[ring_[(start + i) % n].endpoint];
      if (acceptable(ep, ctx, cap, strict)) return &ep;
    }
  }
  return nullptr;
}

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

Maglev::Maglev(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints)
    : endpoints_(endpoints),
      key_(SipKey::from_seed(cluster.hash.seed)),
      bounded_load_(cluster.hash.bounded_load) {
  if (endpoints.empty()) return;
  uint64_t m = std::max<uint64_t>(65537, next_prime(100 * endpoints.size()));
  table_.assign(m, UINT32_MAX);
  // Turns per round proportional to weight (weights divided by their gcd).
  uint32_t g = 0;
  for (const auto& ep : endpoints) g = std::gcd(g, ep.weight);
  struct Perm {
    uint64_t offset, skip, next;
    uint32_t turns;
  };
  std::vector<Perm> perms;
  // Endpoints take turns in address order, so that the config order never matters.
  std::vector<uint32_t> order(endpoints.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return endpoints[a].address_text < endpoints[b].address_text;
  });
  for (uint32_t i : order) {
    const auto& ep = endpoints[i];
    uint64_t offset = siphash13(key_, ep.address_text, 0xA11CE) % m;
    uint64_t skip = siphash13(key_, ep.address_text, 0xB0B) % (m - 1) + 1;
    perms.push_back(Perm{offset, skip, 0, ep.weight / g});
  }
  uint64_t filled = 0;
  while (filled < m) {
    for (size_t k = 0; k < perms.size() && filled < m; ++k) {
      auto& p = perms[k];
      for (uint32_t t = 0; t < p.turns && filled < m; ++t) {
        uint64_t c = (p.offset + p.next * p.skip) % m;
        while (table_[c] != UINT32_MAX) {
          ++p.next;
          c = (p.offset + p.next * p.skip) % m;
        }
        table_[c] = order[k];
        ++p.next;
        ++filled;
      }
    }
  }
}

const Endpoint* Maglev::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (table_.empty()) return nullptr;
  uint64_t h = key_hash(key_, ctx, state);
  int64_t cap = bounded_load_cap(bounded_load_, ctx.cluster_in_flight, ctx.usable_endpoints);
  const size_t m = table_.size();
  // The key's own slot, then up to 16 rehashes (salted by the round), then a walk.
  for (uint64_t round = 0; round <= 16; ++round) {
    uint64_t slot =
        round == 0
            ? h % m
            : siphash13(key_, std::string_view(reinterpret_cast<const char*>(&h), 8), round) % m;
    const Endpoint& ep = endpoints_[table_[slot]];
    if (acceptable(ep, ctx, cap, true)) return &ep;
  }
  for (bool strict : {true, false}) {
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      const Endpoint& ep = endpoints_[(h + i) % endpoints_.size()];
      if (acceptable(ep, ctx, cap, strict)) return &ep;
    }
  }
  return nullptr;
}

}  // namespace switchyard::balancer
