#include "ring.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>

namespace switchyard::balancer::hashing {
namespace {

// A request key is hashed on at most this many bytes (README: hash keys).

class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "consistent_hash"; }
  std::unique_ptr<PolicyTable> build(const config::Cluster& cluster, const Members& members,
                                     const ClusterState&) const override {
    return std::make_unique<HashRing>(cluster, members);
  }
  std::vector<config::ClusterBlockReader> blocks() const override { return {block_reader()}; }
  PolicyTraits traits(const config::Cluster& c) const override { return traits_of(c); }
};

}  // namespace

std::unique_ptr<balancer::Policy> make() { return std::make_unique<Policy>(); }

namespace {

// The splitmix64 finalizer: a bijective mix of a 64-bit word. Spreads one keyed hash into the
// positions of an endpoint's points and of a key's probes (the secret is in the input).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
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

HashRing::HashRing(const config::Cluster& cluster, const Members& members)
    : key_(SipKey::from_seed(config_of(cluster).seed)),
      probes_(std::max<uint32_t>(1, config_of(cluster).ring_probes)) {
  const Config& hash = config_of(cluster);
  struct Point {
    uint32_t hash;
    uint32_t endpoint;
  };
  size_t total = 0;
  for (const auto& m : members) total += size_t{hash.virtual_nodes} * m.endpoint->weight;
  if (total == 0) return;
  std::vector<Point> points;
  points.reserve(total);
  // Owners are member positions (a locality group is a sub-list of the cluster).
  for (uint32_t i = 0; i < members.size(); ++i) {
    const auto& ep = *members[i].endpoint;
    uint64_t base = siphash13(key_, ep.address_text);
    uint64_t n = uint64_t{hash.virtual_nodes} * ep.weight;
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
    return members[owners_[a]].endpoint->address_text < members[owners_[b]].endpoint->address_text;
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

bool HashRing::walk(uint32_t x, const Filter& filter, uint32_t& best,
                    uint32_t& best_distance) const {
  const size_t n = hashes_.size() - 1;
  size_t pos = static_cast<uint32_t>(successor(x));
  // Clockwise from x the distances only grow: stop at the first acceptable point, or as soon
  // as no point can beat the best probe so far.
  for (size_t i = 0; i < n; ++i, pos = pos + 1 == n ? 0 : pos + 1) {
    uint32_t distance = hashes_[pos] - x;  // mod 2^32: wraps past the top of the ring
    if (best != kNone && distance >= best_distance) return true;
    if (filter.acceptable(owners_[pos])) {
      best = owners_[pos];
      best_distance = distance;
      return true;
    }
  }
  return best != kNone;
}

uint32_t HashRing::pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const {
  if (hashes_.empty()) return kNone;
  const Probes probes(key_hash(key_, in, lb));
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
  const uint32_t first = owners_[static_cast<uint32_t>(closest)];
  if (filter.acceptable(first)) return first;
  // Walk on from every probe to the closest acceptable point.
  uint32_t best = kNone;
  uint32_t best_distance = UINT32_MAX;
  for (uint32_t k = 0; k < probes_; ++k) {
    if (!walk(probes[k], filter, best, best_distance)) break;
  }
  return best;
}

}  // namespace switchyard::balancer::hashing
