#include "switchyard/balancer/hash_ring.h"

#include <algorithm>
#include <bit>
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

namespace {

// The splitmix64 finalizer: a bijective mix of a 64-bit word. Spreads one keyed hash into the
// positions of an endpoint's points and of a key's probes (the secret is in the input).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Maps a 64-bit hash onto [0, m) by multiplication (Lemire's fastrange): no division.
uint64_t reduce(uint64_t h, uint64_t m) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(h) * m) >> 64);
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// Position (top 32 bits) of point v of an endpoint whose address hashes to base.
uint32_t point_hash(uint64_t base, uint64_t v) { return mix64(base + v * kGolden) >> 32; }

// The probes of a key hashing to h: positions a, a + b, a + 2b, ... (mod 2^32) from its two
// halves (double hashing, Kirsch & Mitzenmacher 2006): one add per probe. Probe 0 is the top
// half of the key's hash (the classic ring).
struct Probes {
  explicit Probes(uint64_t h)
      : a(static_cast<uint32_t>(h >> 32)), b(static_cast<uint32_t>(h) | 1) {}
  uint32_t operator[](uint32_t k) const { return a + k * b; }
  uint32_t a, b;
};

}  // namespace

HashRing::HashRing(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints)
    : endpoints_(endpoints),
      key_(SipKey::from_seed(cluster.hash.seed)),
      bounded_load_(cluster.hash.bounded_load),
      probes_(std::max<uint32_t>(1, cluster.hash.ring_probes)) {
  struct Point {
    uint32_t hash;
    uint32_t endpoint;
  };
  size_t total = 0;
  for (const auto& ep : endpoints) total += size_t{cluster.hash.virtual_nodes} * ep.weight;
  if (total == 0) return;
  std::vector<Point> points;
  points.reserve(total);
  // Owners are positions in this list (a locality group is a sub-list of the cluster).
  for (uint32_t i = 0; i < endpoints.size(); ++i) {
    const auto& ep = endpoints[i];
    uint64_t base = siphash13(key_, ep.address_text);
    uint64_t n = uint64_t{cluster.hash.virtual_nodes} * ep.weight;
    for (uint64_t v = 0; v < n; ++v) points.push_back(Point{point_hash(base, v), i});
  }
  // Counting sort by the top bits (about one point per bucket), then insertion sort inside
  // each bucket: linear time, and the bucket table falls out of it.
  size_t buckets = std::clamp<size_t>(std::bit_ceil(total), 2, size_t{1} << 31);
  shift_ = 32 - static_cast<unsigned>(std::countr_zero(buckets));
  std::vector<uint32_t> start(buckets + 1, 0);  // first position of each bucket
  for (const auto& p : points) ++start[(p.hash >> shift_) + 1];
  for (size_t b = 1; b <= buckets; ++b) start[b] += start[b - 1];
  std::vector<uint32_t> cursor(start.begin(), start.end() - 1);
  hashes_.resize(total + 1);
  owners_.resize(total + 1);
  for (const auto& p : points) {
    uint32_t at = cursor[p.hash >> shift_]++;
    hashes_[at] = p.hash;
    owners_[at] = p.endpoint;
  }
  // Equal positions (a few at 160,000 points) are ordered by address, so that the config
  // order never matters.
  auto before = [&](size_t a, size_t b) {
    if (hashes_[a] != hashes_[b]) return hashes_[a] < hashes_[b];
    return endpoints[owners_[a]].address_text < endpoints[owners_[b]].address_text;
  };
  for (size_t b = 0; b < buckets; ++b) {
    for (size_t i = start[b] + 1; i < start[b + 1]; ++i) {
      for (size_t j = i; j > start[b] && before(j, j - 1); --j) {
        std::swap(hashes_[j], hashes_[j - 1]);
        std::swap(owners_[j], owners_[j - 1]);
      }
    }
  }
  hashes_[total] = UINT32_MAX;  // sentinel: never below a probe
  owners_[total] = owners_[0];
  // Each bucket's entry: the first point at or after the bucket's start (the next bucket's
  // first point for an empty one, wrapping to point 0 past the last), as hash << 32 | position.
  buckets_.resize(buckets);
  for (size_t b = buckets; b-- > 0;) {
    uint32_t pos = start[b] < total ? start[b] : 0;
    buckets_[b] = uint64_t{hashes_[pos]} << 32 | pos;
  }
}

[[gnu::always_inline]] inline uint64_t HashRing::successor(uint32_t x) const {
  const size_t b = x >> shift_;
  const uint64_t entry = buckets_[b];
  const uint32_t first = static_cast<uint32_t>(entry >> 32);
  const uint32_t pos = static_cast<uint32_t>(entry);
  // The entry answers unless x lies past the first point of its own bucket; then it is most
  // likely the next point. Both are computed without a branch (the sentinel keeps pos + 1 in
  // bounds); only x past two points of one bucket takes the loop.
  const bool past = ((first >> shift_) == b) & (first < x);
  const uint32_t next = hashes_[pos + 1];
  if (past && next < x) [[unlikely]] {
    size_t p = pos + 2;
    while (hashes_[p] < x) ++p;
    if (p == hashes_.size() - 1) p = 0;
    return uint64_t{hashes_[p]} << 32 | p;
  }
  const uint32_t at = past ? (pos + 1 == hashes_.size() - 1 ? 0 : pos + 1) : pos;
  const uint32_t hash = past ? hashes_[at] : first;
  return uint64_t{hash} << 32 | at;
}

bool HashRing::walk(uint32_t x, const PickContext& ctx, int64_t cap, bool strict,
                    const Endpoint*& best, uint32_t& best_distance) const {
  const size_t n = hashes_.size() - 1;
  size_t pos = static_cast<uint32_t>(successor(x));
  // Clockwise from x the distances only grow: stop at the first acceptable point, or as soon
  // as no point can beat the best probe so far.
  for (size_t i = 0; i < n; ++i, pos = pos + 1 == n ? 0 : pos + 1) {
    uint32_t distance = hashes_[pos] - x;  // mod 2^32: wraps past the top of the ring
    if (best != nullptr && distance >= best_distance) return true;
    const Endpoint& ep = endpoints_[owners_[pos]];
    if (acceptable(ep, ctx, cap, strict)) {
      best = &ep;
      best_distance = distance;
      return true;
    }
  }
  return best != nullptr;
}

const Endpoint* HashRing::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (hashes_.empty()) return nullptr;
  const Probes probes(key_hash(key_, ctx, state));
  // Fast path: the point closest to any probe, when it is acceptable: it then is the answer
  // of the full walk below too. (distance, position) in one word keeps the minimum
  // branch-free.
  uint64_t closest = UINT64_MAX;
  for (uint32_t k = 0; k < probes_; ++k) {
    const uint32_t x = probes[k];
    const uint64_t at = successor(x);                               // its hash << 32 | its position
    const uint32_t distance = static_cast<uint32_t>(at >> 32) - x;  // mod 2^32
    closest = std::min(closest, uint64_t{distance} << 32 | static_cast<uint32_t>(at));
  }
  int64_t cap = bounded_load_cap(bounded_load_, ctx.cluster_in_flight, ctx.usable_endpoints);
  const Endpoint& first = endpoints_[owners_[static_cast<uint32_t>(closest)]];
  if (acceptable(first, ctx, cap, true)) return &first;
  // Walk on from every probe: first for an endpoint that is usable, untried and under its
  // cap; if the ring has none, for any usable one.
  for (bool strict : {true, false}) {
    const Endpoint* best = nullptr;
    uint32_t best_distance = UINT32_MAX;
    for (uint32_t k = 0; k < probes_; ++k) {
      if (!walk(probes[k], ctx, cap, strict, best, best_distance)) break;
    }
    if (best != nullptr) return best;
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
    uint64_t slot, skip;  // the permutation's next candidate slot, and its step
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

const Endpoint* Maglev::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (table_.empty()) return nullptr;
  uint64_t h = key_hash(key_, ctx, state);
  int64_t cap = bounded_load_cap(bounded_load_, ctx.cluster_in_flight, ctx.usable_endpoints);
  const size_t m = table_.size();
  // The key's own slot, then up to 16 rehashes (salted by the round), then a walk.
  for (uint64_t round = 0; round <= 16; ++round) {
    uint64_t slot =
        round == 0
            ? reduce(h, m)
            : reduce(siphash13(key_, std::string_view(reinterpret_cast<const char*>(&h), 8), round),
                     m);
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
