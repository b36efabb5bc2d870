#pragma once

// `strategy: consistent_hash`: a keyed multi-probe ring.

#include <cstdint>
#include <memory>
#include <vector>

#include "hash_config.h"
#include "switchyard/balancer/policy.h"
#include "switchyard/common/siphash.h"

namespace switchyard::balancer::hashing {

// Consistent hashing on a ring. Each endpoint owns virtual_nodes * weight points derived from
// SipHash-1-3(seed; address): placed by address, never by position, so reordering the config
// moves nothing and removing an endpoint moves only its keys.
//
// Lookup is multi-probe (Appleton & O'Reilly 2015): the key's keyed hash gives `ring_probes`
// positions; each finds the first point at or after it, and the key goes to the point closest
// to its probe. With 160 points per endpoint a single probe leaves endpoints 10-15% above the
// mean (the arcs between random points vary); 8 probes bring that to the key sampling noise,
// and the minimal-disruption property is kept: removing an endpoint's points only lengthens
// distances that pointed at it. With ring_probes: 1 this is the classic (ketama) ring.
//
// An endpoint the filter does not accept (unusable, already tried, at its bounded-load cap) is
// skipped by walking on from each probe (never by rebuilding), so its keys come back when it
// does. Points sit in a sorted array with a bucket table on their top bits whose entries hold
// the first point at or after each bucket: most lookups read one word, the rest the next
// point, without a mispredicted binary search.
class HashRing final : public PolicyTable {
 public:
  HashRing(const config::Cluster& cluster, const Members& members);
  uint32_t pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const override;

  size_t memory_bytes() const {
    return hashes_.capacity() * sizeof(uint32_t) + owners_.capacity() * sizeof(uint32_t) +
           buckets_.capacity() * sizeof(uint64_t);
  }

 private:
  // The first point at or after x (wrapping to point 0 past the last), as its hash << 32 |
  // its position.
  uint64_t successor(uint32_t x) const;
  // Walks on from probe x to the first acceptable member closer than best_distance; updates
  // best and best_distance. Returns false when the whole ring was walked without one.
  bool walk(uint32_t x, const Filter& filter, uint32_t& best, uint32_t& best_distance) const;

  SipKey key_;
  uint32_t probes_;
  // Point positions on a 2^32 ring, sorted, plus a sentinel (UINT32_MAX) that ends every
  // scan; 32 bits keep the arrays small enough for the L2 cache at 1,000 x 160 points.
  std::vector<uint32_t> hashes_;
  std::vector<uint32_t> owners_;  // member index of each point
  // Per bucket of the top bits (about one point each): the first point at or after the
  // bucket's start, hash << 32 | position, so that most lookups read one word.
  std::vector<uint64_t> buckets_;
  unsigned shift_ = 31;
};

std::unique_ptr<Policy> make();

}  // namespace switchyard::balancer::hashing
