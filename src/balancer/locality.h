#pragma once

// Private to the balancer module. The locality layer (README, "Geographic routing" and
// "Predictive geographic routing"): a group per region (and per zone), which one a client's
// pick draws from, how much of a region's traffic spills and where to, and the control tick
// that measures regions and predicts their health. A ClusterBalancer with a locality block
// owns one; its pick asks it for clients with a region.

#include <atomic>
#include <memory>
#include <string_view>
#include <vector>

#include "group.h"
#include "switchyard/balancer/front_door.h"

namespace switchyard::balancer {

struct Region {
  std::unique_ptr<Group> group;
  std::vector<std::unique_ptr<Group>> zones;
  std::atomic<double> spill{0};
  std::atomic<double> latency_ms{-1};
  std::atomic<int32_t> nearest{-1};   // index in regions_
  std::atomic<double> predicted{-1};  // predicted healthy fraction (-1: prediction off)
  std::atomic<uint8_t> cause{0};      // 0 none, 1 unhealthy, 2 predicted
  // With prediction on, the figures regions() shows, summarised by the control thread (the
  // endpoints' trend state is its own): medians over the endpoints, the mean error share, the
  // endpoints predicted to fail (health < 0.5) or not usable.
  std::atomic<double> baseline_ms{-1};
  std::atomic<double> trend_ms_per_s{0};
  std::atomic<double> predicted_ms{-1};
  std::atomic<double> error_rate{0};
  std::atomic<uint32_t> failing{0};
  bool was_healthy = false;  // control thread: hysteresis only after a first healthy
  // A region that is usable-healthy and, with prediction on, predicted so.
  bool sound(double min_healthy) const {
    const double p = predicted.load(kRelaxed);
    return group->healthy(min_healthy) && (p < 0 || p >= min_healthy);
  }
};

class Locality {
 public:
  // Groups each region's members (and, with `zones`, each zone's), taking worker slots from
  // next_slot on.
  Locality(const config::Cluster& cluster, const Policy& policy, const ClusterState& state,
           const Members& members, bool zones, size_t& next_slot);

  // Every group, for a worker's picking state.
  template <class F>
  void for_each_group(F&& f) const {
    for (const auto& r : regions_) {
      for (const auto& z : r->zones) f(*z);
      f(*r->group);
    }
  }

  // --- worker thread -------------------------------------------------------------------------
  // The pick of a client with a region: its zone, its region, or the fallback, by the spill
  // and the route's cross_region policy. door: the front door that picks within a group.
  const EndpointRef* choose(const ClusterBalancer& door, const PickRequest& req, PickMemo& memo,
                            WorkerCluster& worker, int64_t in_flight,
                            LocalityOutcome& outcome) const;

  // --- any thread ----------------------------------------------------------------------------
  const Region* find(std::string_view name) const;
  const Region& region(int32_t index) const { return *regions_[static_cast<size_t>(index)]; }
  RegionStatus status_of(const Region& r) const;
  std::vector<RegionStatus> regions() const;
  std::vector<const EndpointRef*> warm_targets(std::string_view region) const;
  double min_healthy() const { return min_healthy_; }
  config::Fallback fallback_mode() const { return fallback_; }

  // --- control thread ------------------------------------------------------------------------
  // Every 100 ms: usable counts, spills, latencies, nearest regions and (predictive) trends.
  void tick(const config::Locality& cfg);

 private:
  const EndpointRef* fallback(const ClusterBalancer& door, const Region* local,
                              const PickRequest& req, PickMemo& memo, WorkerCluster& worker,
                              int64_t in_flight, LocalityOutcome& outcome) const;
  void summarise_trends(Region& r);

  std::vector<std::unique_ptr<Region>> regions_;
  bool predictive_ = false;
  bool zones_ = false;
  double min_healthy_ = 0.5;
  config::Fallback fallback_ = config::Fallback::kNearest;
};

}  // namespace switchyard::balancer
