#pragma once

// `strategy: maglev`: a Maglev lookup table over the same `hash:` block.

#include <cstdint>
#include <memory>
#include <vector>

#include "../consistent_hash/hash_config.h"
#include "switchyard/balancer/policy.h"
#include "switchyard/common/siphash.h"

namespace switchyard::balancer::maglev {

// Maglev hashing (Eisenbud et al., NSDI 2016, §3.4): a lookup table of prime size M >= 100 *
// endpoints (65537 unless more endpoints need a larger prime), filled by each endpoint's
// permutation (offset, skip from two keyed hashes of its address) in turns proportional to
// weight. A key goes to table[hash mapped onto M]; when the filter does not accept that
// member, the key is rehashed with the attempt number (up to 16 times), then the members are
// walked from there: no per-request rebuild.
class Table final : public PolicyTable {
 public:
  Table(const config::Cluster& cluster, const Members& members);
  uint32_t pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const override;

  uint32_t slot_owner(size_t slot) const { return table_[slot]; }
  size_t table_size() const { return table_.size(); }
  size_t memory_bytes() const { return table_.capacity() * sizeof(uint32_t); }

 private:
  size_t members_;
  SipKey key_;
  std::vector<uint32_t> table_;
};

// Smallest prime >= n.
uint64_t next_prime(uint64_t n);

std::unique_ptr<Policy> make();

}  // namespace switchyard::balancer::maglev
