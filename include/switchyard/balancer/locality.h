#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "switchyard/balancer/strategy.h"

namespace switchyard::balancer {

// The geographic layer (the cluster's `locality:` block; README, "Geographic routing"). It
// narrows the candidates to a region (and zone), then the cluster's strategy picks among them:
// every region and zone has its own instance of that strategy over its own endpoints (so
// consistent hashing keeps one ring per region, and resource_aware compares scores within the
// chosen region only).
//
// Per request: the client's region while it has at least min_healthy_fraction of its
// endpoints usable; below that a share of its traffic equal to the deficit spills to the
// fallback (nearest region by measured latency, any region, or none); a region with nothing
// usable spills everything. The route's cross_region policy can forbid spilling (deny) or
// turn it into a failover of the whole region while it counts as unhealthy (failover_only:
// below min_healthy_fraction, or nothing usable). The spill share rises at once and falls by
// at most 0.05 per 100 ms, so a flapping endpoint does not swing traffic back and forth (and a
// failed-over region comes back once its spill has fallen to 0).
class Locality final : public Strategy {
 public:
  Locality(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints);
  ~Locality() override;
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;
  void prepare(WorkerLbState& state) const override;

  // Control thread, every 100 ms: usable counts, spill shares, region latency (mean of the
  // usable endpoints' latency EWMAs) and each region's nearest healthy other region.
  void tick() override;

  struct RegionInfo {
    std::string name;
    uint32_t endpoints = 0;
    uint32_t usable = 0;
    bool healthy = false;  // usable / endpoints >= min_healthy_fraction
    double spill = 0;
    double latency_ms = -1;  // -1: not measured yet
    std::string nearest;     // empty: none
  };
  std::vector<RegionInfo> regions() const;

  // The usable endpoints of the region that clients of `region` fail over to (its nearest
  // healthy other region; none for fallback any / none): a worker keeps a few idle
  // connections open to them so that a failover does not pay connection set-up under load.
  std::vector<const Endpoint*> warm_targets(std::string_view region) const;

 private:
  struct Group;
  struct Region;
  const Endpoint* pick_in(const Group& group, const PickContext& ctx, WorkerLbState& state) const;
  const Region* find(std::string_view name) const;
  const Endpoint* fallback(const Region* local, const PickContext& ctx, WorkerLbState& state) const;

  double min_healthy_;
  config::Fallback fallback_;
  bool zones_;         // zone preference (off for hashing: one ring per region)
  bool bounded_load_;  // hashing with bounded_load: caps count the region's requests
  std::unique_ptr<Group> all_;
  std::vector<std::unique_ptr<Region>> regions_;
  size_t groups_ = 0;
};

}  // namespace switchyard::balancer
