#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "switchyard/config/config.h"
#include "switchyard/registry/endpoint.h"

namespace switchyard::balancer {

using registry::Endpoint;

// What routing knows about a request, filled once per request. Every field may be empty: a
// strategy that needs one copes without it.
// Where a locality-aware pick went (switchyard_picks_total's label, and the 503 reason).
enum class LocalityOutcome : uint8_t {
  kNone,      // no locality layer, or no client region
  kLocal,     // the client's region (and zone, when preferred)
  kFallback,  // another region
  kDenied,    // the client's region has nothing usable and the route denies cross-region
};

struct PickContext {
  std::string_view hash_key;  // extracted by routing per cluster.hash.key
  bool has_hash_key = false;
  std::string_view client_region;
  std::string_view client_zone;
  config::CrossRegion cross_region = config::CrossRegion::kAllow;  // the route's policy
  mutable LocalityOutcome locality = LocalityOutcome::kNone;       // set by the locality layer
  uint32_t attempt = 0;  // 0 for the first try, 1.. for retries
  // For bounded load: requests of the cluster in flight besides this one, and how many of its
  // endpoints are usable (refreshed by the control thread every 100 ms).
  int64_t cluster_in_flight = 0;
  uint32_t usable_endpoints = 0;
  // Indices of endpoints already tried by this request: avoided while another is usable.
  std::span<const uint32_t> tried;

  bool was_tried(uint32_t index) const {
    for (uint32_t t : tried) {
      if (t == index) return true;
    }
    return false;
  }
};

// Mutable per-worker, per-cluster picking state (round-robin positions, a PRNG). Owned by the
// worker; never shared between threads, so strategies need no atomics for it.
struct WorkerLbState {
  WorkerLbState(size_t endpoints, uint64_t seed);
  uint64_t next_random();  // splitmix64: fast, well mixed, not for secrets

  uint64_t rng;
  uint64_t cursor = 0;
  std::vector<int64_t> current_weight;
  std::vector<double> credit;  // resource_aware's smooth weighted round robin, by endpoint
  // Per endpoint group of a composite strategy (the locality layer: one per region and zone),
  // made by Strategy::prepare when the worker adopts a snapshot.
  std::vector<WorkerLbState> groups;
};

// A load-balancing strategy over one immutable endpoint list. Built once per snapshot on the
// control thread (the expensive half: tables, prefix sums); pick() runs on workers, per
// request: no I/O, no lock, no allocation. The endpoint list outlives the strategy (both live
// in the same ClusterSnapshot).
class Strategy {
 public:
  virtual ~Strategy() = default;
  // Any worker thread. Returns a usable endpoint, or nullptr when none is usable.
  virtual const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const = 0;
  // The worker, once per snapshot: sets up what pick() needs in state beyond the defaults.
  virtual void prepare(WorkerLbState&) const {}
  // The control thread, every 100 ms: refreshes what the strategy derives from live state.
  virtual void tick() {}
};

// Control thread: builds the strategy named in the cluster config over endpoints.
std::unique_ptr<Strategy> build_strategy(const config::Cluster& cluster,
                                         const std::vector<Endpoint>& endpoints);

}  // namespace switchyard::balancer
