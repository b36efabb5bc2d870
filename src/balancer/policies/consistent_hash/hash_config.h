#pragma once

// The `hash:` block, read by the consistent_hash policy and shared with maglev: where the key
// comes from, the ring's size, the secret seed, bounded load and what a missing key does.

#include <cstdint>
#include <string>

#include "switchyard/balancer/policy.h"
#include "switchyard/common/siphash.h"
#include "switchyard/config/schema.h"

namespace switchyard::balancer::hashing {

inline constexpr const char* kBlock = "hash";

enum class OnMissingKey { kRandom, kReject };

struct Config : config::Block {
  config::HashKey key;
  uint32_t virtual_nodes = 160;
  // Extension: lookups per key on the ring (multi-probe consistent hashing); 1 = classic ring.
  uint32_t ring_probes = 8;
  std::string seed;
  double bounded_load = 0;  // 0 = off, else >= 1
  OnMissingKey on_missing_key = OnMissingKey::kRandom;

  // The seed is a secret (it keeps keys from being aimed at one endpoint): only whether one is
  // set is shown.
  void describe(config::BlockFields& out) const override;
};

// The block's reader (and its check of the ring's size over the cluster's endpoints).
config::ClusterBlockReader block_reader();
// The cluster's block (its defaults when the cluster has none, as in a bare unit test).
const Config& config_of(const config::Cluster& cluster);

// What the front door needs of both hashing policies: the key, the missing-key rule, bounded
// load; one table per region (no zones); builds timed.
PolicyTraits traits_of(const config::Cluster& cluster);

// The key's 64-bit hash, for both hashing policies: SipHash-1-3 keyed by hash.seed over its
// first 256 bytes, or a random one when the request has no key (on_missing_key: random).
uint64_t key_hash(const SipKey& key, const PickInput& in, WorkerLbState& lb);

}  // namespace switchyard::balancer::hashing
