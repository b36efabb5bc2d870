#pragma once

// A load-balancing policy, in two halves (Pingora's build / select, Envoy's chooseHost): build()
// runs on the control thread when membership or weights change and makes a table (a ring, a
// Maglev table, a round-robin cycle); the table's pick() runs per request and only orders the
// candidates, asking the front door's Filter which of them it may take. Everything else a pick
// involves (admission, endpoints already tried, the strict-then-any-usable fallback, bounded
// load, half-open trials, locality, the 503 reason) is the front door's (front_door.h), once.
//
// A policy lives in its own folder (src/balancer/policies/<name>/) with its algorithm and the
// YAML block it reads, and is registered by name in one line (policies/policies.cpp).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "switchyard/balancer/cluster_state.h"
#include "switchyard/balancer/endpoint_load.h"
#include "switchyard/breaker/outlier_detector.h"
#include "switchyard/config/schema.h"
#include "switchyard/health/health_checker.h"
#include "switchyard/registry/endpoint.h"

namespace switchyard::balancer {

// One endpoint as the balancer sees it: identity and the live state of the modules that own
// it. The pointers stay valid as long as the ClusterBalancer holding them.
struct EndpointRef {
  const registry::Endpoint* endpoint = nullptr;
  health::EndpointHealth* health = nullptr;  // workers write only its passive counters
  breaker::EndpointBreaker* breaker = nullptr;
  EndpointLoad* load = nullptr;
  uint32_t index = 0;  // position in the cluster (registry::Endpoint::index)

  // Passing its checks and admitted by its circuit breaker (a half-open one is, for its
  // trial).
  bool usable() const {
    return health->healthy.load(std::memory_order_relaxed) && breaker->admits();
  }
};
using Members = std::vector<EndpointRef>;

// Mutable per-worker picking state of one table (round-robin positions, a PRNG). Owned by the
// worker; never shared between threads, so tables need no atomics for it.
struct WorkerLbState {
  WorkerLbState(size_t endpoints, uint64_t seed);
  uint64_t next_random();  // splitmix64: fast, well mixed, not for secrets
  double uniform() { return static_cast<double>(next_random() >> 11) * 0x1.0p-53; }

  uint64_t rng;
  uint64_t cursor = 0;
  std::vector<int64_t> current_weight;
  std::vector<double> credit;
};

inline constexpr uint32_t kNone = UINT32_MAX;

// Slow start by rejection, for the policies that order candidates without weighing them at
// pick time (round robin, random, the hashing tables): a warming member with factor f is
// accepted with probability f, drawn from `uniform` (the worker's PRNG) or, for a hash key, a
// uniform value derived from the key (so a key moves onto a warming endpoint once, as f grows
// past it, and stays). Skipping a member with probability 1 - f gives exactly the share a
// weight of weight x f would (a member picked with probability p ends at p f / (1 - p + p f)).
struct SlowStartDraw {
  WorkerLbState* lb = nullptr;
  double key_uniform = -1;  // >= 0: the key's value in [0, 1)
};

// What the front door accepts on this pass: a usable member (any member while the cluster is
// in panic); on the strict pass also one this request has not tried, that is under the
// bounded-load cap (0 = no cap) and, while slow start rejects (warm != nullptr), that passes
// its warm-up draw.
class Filter {
 public:
  Filter(const Members& members, std::span<const uint32_t> tried, bool strict, int64_t cap,
         bool panic = false, const SlowStartDraw* warm = nullptr)
      : members_(members), tried_(tried), strict_(strict), cap_(cap), panic_(panic), warm_(warm) {}

  bool acceptable(uint32_t i) const {
    const EndpointRef& ref = members_[i];
    if (!panic_ && !ref.usable()) return false;
    if (!strict_) return true;
    for (uint32_t t : tried_) {
      if (t == ref.index) return false;
    }
    if (cap_ != 0 && ref.load->active_requests.load(std::memory_order_relaxed) >= cap_) {
      return false;
    }
    return warm_ == nullptr || warm_passes(ref);
  }
  bool strict() const { return strict_; }
  const Members& members() const { return members_; }

 private:
  bool warm_passes(const EndpointRef& ref) const {
    const double f = ref.load->warm_factor.load(std::memory_order_relaxed);
    if (f >= 1) return true;
    const double u = warm_->key_uniform >= 0 ? warm_->key_uniform : warm_->lb->uniform();
    return u < f;
  }

  const Members& members_;
  std::span<const uint32_t> tried_;
  bool strict_;
  int64_t cap_;
  bool panic_;
  const SlowStartDraw* warm_;
};

// The weight a policy that weighs candidates at pick time (least_request, peak_ewma,
// resource_aware) gives a member: its configured weight times its slow-start factor.
inline double effective_weight(const EndpointRef& ref) {
  return static_cast<double>(ref.endpoint->weight) *
         ref.load->warm_factor.load(std::memory_order_relaxed);
}

struct PickInput {
  std::string_view hash_key;  // routing extracted it (hashing policies); may be missing
  bool has_hash_key = false;
  uint32_t attempt = 0;  // 0 for the first try
  // The caller's steady clock reading (ns), so that a policy that needs the time reads no
  // clock of its own; 0: read it (now() does).
  int64_t now_ns = 0;
  int64_t now() const { return now_ns != 0 ? now_ns : steady_now_ns(); }
};

class PolicyTable {
 public:
  virtual ~PolicyTable() = default;
  // The worker, once per snapshot: sets up what pick() needs in its state.
  virtual void prepare(WorkerLbState&) const {}
  // Any worker: an acceptable member (its index in the table's members), or kNone. No I/O, no
  // lock, no allocation.
  virtual uint32_t pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const = 0;
};

// What the front door needs to know of a policy for one cluster.
struct PolicyTraits {
  // Hashing: the key routing extracts for it (nullptr: the policy needs none), whether a
  // request without one is refused (400), and the bounded-load factor (0 = off).
  const config::HashKey* hash_key = nullptr;
  bool reject_missing_key = false;
  double bounded_load = 0;
  // Whether the locality layer may narrow a pick to the client's zone (a hashing policy keeps
  // one table per region instead, so that a key keeps its endpoint).
  bool zones = true;
  // Whether its build is timed into switchyard_hash_ring_rebuild_seconds.
  bool timed_build = false;
  // Whether it applies slow start itself, through effective_weight() in its comparisons;
  // otherwise the front door's Filter rejects warming members by their factor.
  bool weighs_slow_start = false;
  // Whether it reads the latency estimate's silence rule (EndpointLoad::awaiting_head): the
  // front door keeps that count only for such policies (two atomic adds per try).
  bool uses_latency = false;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  // Control thread: the table over members (a cluster, or one region or zone of it). state:
  // the cluster's own, which outlives the table (what it has learned).
  virtual std::unique_ptr<PolicyTable> build(const config::Cluster& cluster, const Members& members,
                                             const ClusterState& state) const = 0;
  // The cluster blocks this policy defines and reads itself.
  virtual std::vector<config::ClusterBlockReader> blocks() const { return {}; }
  // The blocks it reads (its own, and any it shares with another policy): what /admin/config
  // shows of a cluster that uses it.
  virtual std::vector<std::string> reads() const {
    std::vector<std::string> keys;
    for (const auto& b : blocks()) keys.push_back(b.key);
    return keys;
  }
  virtual PolicyTraits traits(const config::Cluster&) const { return {}; }
};

// The policies by name, in registration order.
class PolicyRegistry {
 public:
  void add(std::unique_ptr<Policy> policy) { policies_.push_back(std::move(policy)); }
  const Policy* find(std::string_view name) const;
  // What the configuration reader accepts: the policies' names and their blocks.
  config::Schema schema() const;

 private:
  std::vector<std::unique_ptr<Policy>> policies_;
};

// The built-in policies (src/balancer/policies/policies.cpp).
const PolicyRegistry& policies();
// The schema config::load_file needs: policies().schema(), built once.
const config::Schema& schema();

}  // namespace switchyard::balancer
