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
// virtual_nodes * weight points derived from SipHash-1-3(seed; address): placed by address,
// never by position, so reordering the config moves nothing and removing an endpoint moves
// only its keys.
//
// Lookup is multi-probe (Appleton & O'Reilly 2015): the key's keyed hash gives `ring_probes`
// positions; each finds the first point at or after it, and the key goes to the point closest
// to its probe. With 160 points per endpoint a single probe leaves endpoints 10-15% above the
// mean (the arcs between random points vary); 8 probes bring that to the key sampling noise,
// and the minimal-disruption property is kept: removing an endpoint's points only lengthens
// distances that pointed at it. With ring_probes: 1 this is the classic (ketama) ring.
//
// An endpoint that is unusable, already tried by this request or at its bounded-load cap is
// skipped by walking on from each probe (never by rebuilding), so its keys come back when it
// does. Points sit in a sorted array with a bucket table on their top bits whose entries hold
// the first point at or after each bucket: most lookups read one word, the rest the next
// point, without a mispredicted binary search.
class HashRing final : public Strategy {
 public:
  HashRing(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints);
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;

  size_t memory_bytes() const {
    return hashes_.capacity() * sizeof(uint32_t) + owners_.capacity() * sizeof(uint32_t) +
           buckets_.capacity() * sizeof(uint64_t);
  }

 private:
  // The first point at or after x (wrapping to point 0 past the last), as its hash << 32 |
  // its position.
  uint64_t successor(uint32_t x) const;
  // Walks on from probe x to the first acceptable endpoint closer than best_distance; updates
  // best and best_distance. Returns false when the whole ring was walked without one.
  bool walk(uint32_t x, const PickContext& ctx, int64_t cap, bool strict, const Endpoint*& best,
            uint32_t& best_distance) const;

  const std::vector<Endpoint>& endpoints_;
  SipKey key_;
  double bounded_load_;
  uint32_t probes_;
  // Point positions on a 2^32 ring, sorted, plus a sentinel (UINT32_MAX) that ends every
  // scan; 32 bits keep the arrays small enough for the L2 cache at 1,000 x 160 points.
  std::vector<uint32_t> hashes_;
  std::vector<uint32_t> owners_;  // endpoint index of each point
  // Per bucket of the top bits (about one point each): the first point at or after the
  // bucket's start, hash << 32 | position, so that most lookups read one word.
  std::vector<uint64_t> buckets_;
  unsigned shift_ = 31;
};

// Maglev hashing (Eisenbud et al., NSDI 2016, §3.4) (the `maglev` strategy): a lookup table
// of prime size M >= 100 * endpoints (65537 unless more endpoints need a larger prime), filled
// by each endpoint's permutation (offset, skip from two keyed hashes of its address) in turns
// proportional to weight. A key goes to table[hash mapped onto M]; when that endpoint is unusable,
// tried or at its cap, the key is rehashed with the attempt number (up to 16 times), then the table
// is walked from there: no per-request rebuild.
class Maglev final : public Strategy {
 public:
  Maglev(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints);
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;

  uint32_t slot_owner(size_t slot) const { return table_[slot]; }
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
