#pragma once

#include <cstdint>
#include <vector>

#include "switchyard/balancer/strategy.h"
#include "switchyard/common/siphash.h"

namespace switchyard::balancer {

// The cap of bounded-load consistent hashing (Mirrokni, Thorup, Zadimoghaddam 2018): with
// factor c, no endpoint takes more than ceil(c * (in_flight + 1) / usable) requests at once.
// 0 = no cap (factor 0 turns bounded load off).
int64_t bounded_load_cap(double factor, int64_t in_flight, uint32_t usable);

// Consistent hashing on a ring (the `consistent_hash` strategy). Each endpoint owns
// virtual_nodes * weight points at SipHash-1-3(seed; address, i): placed by address, never by
// position, so reordering the config moves nothing and removing an endpoint moves only its
// keys. A key goes to the owner of the first point at or after SipHash(seed; key); an endpoint
// that is unusable, already tried by this request or at its bounded-load cap is skipped by
// walking on (never by rebuilding), so its keys come back when it does.
class HashRing final : public Strategy {
 public:
  HashRing(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints);
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;

  size_t memory_bytes() const { return ring_.capacity() * sizeof(Point); }

 private:
  struct Point {
    uint64_t hash;
    uint32_t endpoint;
  };
  const std::vector<Endpoint>& endpoints_;
  SipKey key_;
  double bounded_load_;
  std::vector<Point> ring_;
};

// Maglev hashing (Eisenbud et al., NSDI 2016, §3.4) (the `maglev` strategy): a lookup table
// of prime size M >= 100 * endpoints (65537 unless more endpoints need a larger prime), filled
// by each endpoint's permutation (offset, skip from two keyed hashes of its address) in turns
// proportional to weight. A key goes to table[hash % M]; when that endpoint is unusable, tried
// or at its cap, the key is rehashed with the attempt number (up to 16 times), then the table
// is walked from there: no per-request rebuild.
class Maglev final : public Strategy {
 public:
  Maglev(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints);
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;

  uint32_t owner(uint64_t hash) const { return table_[hash % table_.size()]; }
  size_t table_size() const { return table_.size(); }
  size_t memory_bytes() const { return table_.capacity() * sizeof(uint32_t); }

 private:
  const std::vector<Endpoint>& endpoints_;
  SipKey key_;
  double bounded_load_;
  std::vector<uint32_t> table_;
};

// Smallest prime >= n.
uint64_t next_prime(uint64_t n);

}  // namespace switchyard::balancer
