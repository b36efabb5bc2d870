#pragma once

// The balancer's one front door. An HTTP/1.1 session (and an HTTP/2 stream) asks it for a pick
// and reports one outcome; everything a pick involves lives behind it, once:
//   - admission against circuit_breaker.max_pending_requests (503 at once, not a queue);
//   - the locality layer: the client's region (and zone) while it is healthy, a share of it or
//     all of it to the fallback region per the route's cross_region policy, the 503 naming a
//     region a route may not leave;
//   - the policy's table for the chosen group, asked twice: first for an endpoint this request
//     has not tried and under the bounded-load cap (hashing with bounded_load), then for any
//     usable one;
//   - the half-open trial claim (a pick landing on an endpoint whose trial another request
//     holds picks again without it);
//   - the endpoint's in-flight count, and the outcome fed to its circuit breaker.
// Built on the control thread per snapshot; pick/report/release run on workers with no lock,
// no I/O and no allocation (but for the text of a 503).

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "switchyard/balancer/cluster_state.h"
#include "switchyard/balancer/policy.h"
#include "switchyard/common/stats.h"
#include "switchyard/registry/registry.h"

namespace switchyard::balancer {

// The balancer's statistics of one cluster.
struct ClusterStats {
  enum : size_t {
    kNoEndpoint,  // 503: nothing usable to pick
    kOverflow,    // 503: max_pending_requests reached
    kPicksLocal,  // locality clusters: picks in the client's region / elsewhere
    kPicksFallback,
    kLoadReportOk,  // the four load-report results, in LoadReportResult order
    kLoadReportMalformed,
    kLoadReportInvalidValue,
    kLoadReportDuplicate,
    kCount,
  };
  ClusterStats();
  stats::Counters<kCount> counters;
  stats::Histogram ring_rebuild;  // seconds to build the hashing table (control thread)
};

// Where a locality-aware pick went (switchyard_picks_total's label, and the 503 reason).
enum class LocalityOutcome : uint8_t {
  kNone,      // no locality layer, or no client region
  kLocal,     // the client's region (and zone, when preferred)
  kFallback,  // another region
  kDenied,    // the client's region has nothing usable and the route denies cross-region
};

// What routing knows about a request, filled once.
struct PickRequest {
  std::string_view hash_key;
  bool has_hash_key = false;
  std::string_view client_region;
  std::string_view client_zone;
  config::CrossRegion cross_region = config::CrossRegion::kAllow;
  // The steady clock now (ns), when the caller has read it anyway (0: policies read it).
  int64_t now_ns = 0;
};

// A request's memory across its tries: the endpoints tried (avoided while another is usable).
struct PickMemo {
  std::array<uint32_t, 48> tried{};
  uint32_t tried_count = 0;
  uint32_t attempt = 0;  // 0 for the first try
  std::span<const uint32_t> tried_span() const { return {tried.data(), tried_count}; }
  void reset() { tried_count = attempt = 0; }
};

// One try's endpoint, or why there is none.
struct Pick {
  const EndpointRef* ref = nullptr;
  bool trial = false;     // holds the endpoint's half-open trial
  bool counted = false;   // counted in flight (release() uncounts it)
  bool awaiting = false;  // counted as waiting for its response head (headed() uncounts it)
  bool reported = false;
  LocalityOutcome locality = LocalityOutcome::kNone;
  unsigned status = 0;  // when ref is null: 503
  std::string reason;
};

// Per worker, per cluster: the picking state of each of the balancer's tables.
struct WorkerCluster {
  std::vector<WorkerLbState> groups;
};

// A region of a locality cluster as admin and metrics see it.
struct RegionStatus {
  std::string name;
  uint32_t endpoints = 0;
  uint32_t usable = 0;
  bool healthy = false;  // usable / endpoints >= min_healthy_fraction
  double spill = 0;
  double latency_ms = -1;  // -1: not measured yet
  std::string nearest;     // empty: none
  // Why it spills: "" (it does not), "unhealthy" (too few usable endpoints), "predicted"
  // (locality.predictive: its endpoints' trends say it will be).
  std::string spill_cause;
  // Predictive locality (README, "Predictive geographic routing"); predicted_healthy < 0 when
  // it is off. Medians over the region's endpoints, and the mean error share.
  double predicted_healthy = -1;
  double baseline_ms = -1;
  double trend_ms_per_s = 0;
  double predicted_ms = -1;
  double error_rate = 0;
  uint32_t failing = 0;  // endpoints predicted to fail (health < 0.5) or not usable
};

// The cap of bounded-load consistent hashing (Mirrokni, Thorup, Zadimoghaddam 2018): with
// factor c, no endpoint takes more than ceil(c * (in_flight + 1) / usable) requests at once.
// 0 = no cap (factor 0 turns bounded load off). Used for the cluster and for each region.
int64_t bounded_load_cap(double factor, int64_t in_flight, uint32_t usable);

// What a pick for a request like this would do now (GET /admin/explain), without picking:
// nothing is counted, claimed or moved.
struct PickExplanation {
  const EndpointRef* endpoint = nullptr;  // the endpoint it would get (nullptr: 503)
  LocalityOutcome locality = LocalityOutcome::kNone;
  // Locality clusters with a client region: that region's state and the share that spills.
  bool region_known = false;  // the client's region has endpoints in this cluster
  bool region_healthy = false;
  double spill = 0;          // share of its requests sent to the fallback now (allow)
  std::string spill_region;  // where they go: its nearest healthy region ("" : any / none)
  RegionStatus region;       // the client's region as regions() shows it (region_known)
  std::string group;         // the table that ordered the candidates: "" cluster, else region
  // The usable candidates in the order this request would try them (a hash key's walk of the
  // ring or Maglev table; round robin's next turns from a fresh cursor).
  std::vector<const EndpointRef*> order;
};

struct Group;    // src/balancer/group.h
class Locality;  // src/balancer/locality.h

class ClusterBalancer {
 public:
  // Control thread. refs: the cluster's endpoints (in order) with their module states, which
  // owners keep alive. notify: where outcomes that need the circuit breaker go (may be null).
  struct Owned {
    std::vector<std::shared_ptr<health::EndpointHealth>> health;
    std::vector<std::shared_ptr<breaker::EndpointBreaker>> breakers;
    std::vector<std::shared_ptr<EndpointLoad>> loads;
  };
  ClusterBalancer(const registry::ClusterMembership& cluster, const Policy& policy, Owned owned,
                  std::shared_ptr<ClusterState> state, std::shared_ptr<ClusterStats> stats,
                  breaker::OutlierDetector* notify);
  ~ClusterBalancer();
  ClusterBalancer(const ClusterBalancer&) = delete;
  ClusterBalancer& operator=(const ClusterBalancer&) = delete;

  // --- worker thread -------------------------------------------------------------------------
  // Once per snapshot: this worker's picking state.
  void prepare(WorkerCluster& worker, uint64_t seed) const;
  // The next try's endpoint. memo carries the request's tries.
  void pick(const PickRequest& req, PickMemo& memo, WorkerCluster& worker, Pick& out) const;
  // The try's outcome (success: any response below 500), for the circuit breaker and the
  // health score; once per pick. local_origin: a failure of the try itself (connect failure,
  // reset, timeout) rather than the endpoint's 5xx (circuit_breaker.split_local_origin).
  void report(Pick& pick, bool success, bool local_origin = false) const;
  // Whether the try's connect (and TLS handshake) to the picked endpoint succeeded: the
  // passive check (health_check.passive_connect_failures) that marks an endpoint refusing
  // connections unhealthy without waiting for its probe.
  void connect_result(const Pick& pick, bool connected) const;
  // The try's response head arrived: it no longer waits for one (the latency estimate's
  // silence rule). release() does it too when no head came.
  void headed(Pick& pick) const;
  // The try is over: no longer in flight (a trial without an outcome is given back).
  void release(Pick& pick) const;
  // The try's response head (any protocol), ms after the try started: the endpoint's latency
  // estimates (failure: a 5xx or a 429, a penalty sample), and the sample adaptive weights
  // learn from. Calls headed(). now_ns: the steady clock.
  void observe_head(Pick& pick, unsigned status, double ms, int64_t now_ns) const;
  // A load report received from the pick's endpoint: parsed, applied, counted.
  void accept_load_report(const Pick& pick, std::string_view header,
                          LoadReportFormat format = LoadReportFormat::kHeader) const;

  // --- any thread --------------------------------------------------------------------------
  PickExplanation explain(const PickRequest& req) const;
  const config::Cluster& config() const { return *cluster_.config; }
  const registry::ClusterMembership& cluster() const { return cluster_; }
  const Members& members() const { return members_; }
  const Policy& policy() const { return policy_; }
  // The hash key routing extracts for this cluster's policy (nullptr: none), and whether a
  // request without one is refused (400).
  const config::HashKey* hash_key() const { return traits_.hash_key; }
  bool reject_missing_key() const { return traits_.reject_missing_key; }
  const ClusterStats& stats() const { return *stats_; }
  LoadEstimate load_estimate(const EndpointRef& ref, int64_t now_ns) const;
  // resource_aware's weights as a score uses them now, and whether they are learned
  // (`weights: adaptive`) with the fit behind them.
  ResourceWeights resource_weights() const;
  bool learns_weights() const { return learns_; }
  const LearnedWeights& learned_weights() const { return state_->weights; }
  std::vector<RegionStatus> regions() const;  // empty without a locality block
  // The usable endpoints of the region that clients of `region` fail over to (its nearest
  // healthy other region; none for fallback any / none): workers keep a few idle
  // connections open to them so that a failover does not pay connection set-up under load.
  std::vector<const EndpointRef*> warm_targets(std::string_view region) const;

  // --- control thread ----------------------------------------------------------------------
  // Every 100 ms: usable counts, and the locality layer's spill shares, region latencies
  // and nearest regions.
  void tick();

 private:
  friend class Locality;  // picks within its regions' groups through pick_in
  const EndpointRef* pick_in(const Group& group, const PickInput& in, PickMemo& memo,
                             WorkerCluster& worker, int64_t in_flight) const;
  // Control thread (tick): slow-start factors and the panic flag; adaptive weights' samples
  // and fit.
  void tick_endpoints(uint32_t usable);
  void tick_learning(int64_t now_ns);
  // The priority levels' pick, or the locality layer's for a client with a region.
  const EndpointRef* choose(const PickRequest& req, PickMemo& memo, WorkerCluster& worker,
                            int64_t in_flight, LocalityOutcome& outcome) const;
  // The group a pick without a locality decision draws from: the active priority level's,
  // or the whole cluster's (one level, or no level has a usable endpoint).
  const Group& base_group() const;

  const registry::ClusterMembership& cluster_;
  const Policy& policy_;
  Owned owned_;
  Members members_;
  std::shared_ptr<ClusterState> state_;
  std::shared_ptr<ClusterStats> stats_;
  breaker::OutlierDetector* notify_;
  PolicyTraits traits_;
  struct LoadModelHolder;
  std::unique_ptr<LoadModelHolder> load_model_;
  std::unique_ptr<Group> all_;
  // Priority levels (README, "Priority levels"), lowest number first; empty when the cluster
  // has one level or a locality block. The control tick sets the active one: the first with a
  // usable endpoint (-1: none has one, the whole cluster's group decides).
  std::vector<std::unique_ptr<Group>> levels_;
  std::atomic<int32_t> active_level_{0};
  // The locality layer (balancer/locality.h; nullptr when the cluster has no locality block).
  std::unique_ptr<Locality> locality_;
  bool learns_ = false;
  size_t groups_ = 0;
};

}  // namespace switchyard::balancer
