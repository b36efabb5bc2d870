#include "switchyard/balancer/locality.h"

#include <algorithm>
#include <map>

namespace switchyard::balancer {
namespace {

constexpr double kSpillFallPerTick = 0.05;

double uniform(WorkerLbState& state) {
  return static_cast<double>(state.next_random() >> 11) * 0x1.0p-53;
}

}  // namespace

// A set of endpoints with its own strategy instance (copies of the cluster's Endpoint entries:
// same index, address and shared state).
struct Locality::Group {
  std::string name;
  std::vector<Endpoint> endpoints;
  std::unique_ptr<Strategy> strategy;
  size_t slot = 0;  // its WorkerLbState in state.groups
  std::atomic<uint32_t> usable{0};

  Group(std::string n, const config::Cluster& cluster, std::vector<Endpoint> eps, size_t s)
      : name(std::move(n)), endpoints(std::move(eps)), slot(s) {
    config::Cluster inner = cluster;
    inner.locality.reset();
    strategy = build_strategy(inner, endpoints);
    usable = static_cast<uint32_t>(endpoints.size());
  }
  bool healthy(double min_fraction) const {
    uint32_t u = usable.load(std::memory_order_relaxed);
    return u > 0 && u >= min_fraction * static_cast<double>(endpoints.size());
  }
  void count_usable() {
    uint32_t u = 0;
    for (const auto& ep : endpoints) u += ep.state->usable() ? 1 : 0;
    usable.store(u, std::memory_order_relaxed);
  }
};

struct Locality::Region {
  std::unique_ptr<Group> group;
  std::vector<std::unique_ptr<Group>> zones;
  std::atomic<double> spill{0};
  std::atomic<double> latency_ms{-1};
  std::atomic<int32_t> nearest{-1};  // index in regions_
  bool was_healthy = false;          // control thread: hysteresis only after a first healthy
};

Locality::Locality(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints)
    : min_healthy_(cluster.locality ? cluster.locality->min_healthy_fraction : 0.5),
      fallback_(cluster.locality ? cluster.locality->fallback : config::Fallback::kNearest),
      zones_(cluster.strategy != config::Strategy::kConsistentHash &&
             cluster.strategy != config::Strategy::kMaglev),
      bounded_load_(!zones_ && cluster.hash.bounded_load > 0) {
  all_ = std::make_unique<Group>("", cluster, endpoints, groups_++);
  std::map<std::string, std::vector<Endpoint>> by_region;
  for (const auto& ep : endpoints) by_region[ep.region].push_back(ep);
  for (auto& [name, eps] : by_region) {
    auto region = std::make_unique<Region>();
    if (zones_) {
      std::map<std::string, std::vector<Endpoint>> by_zone;
      for (const auto& ep : eps) {
        if (!ep.zone.empty()) by_zone[ep.zone].push_back(ep);
      }
      for (auto& [zone, zeps] : by_zone) {
        region->zones.push_back(std::make_unique<Group>(zone, cluster, std::move(zeps), groups_++));
      }
    }
    region->group = std::make_unique<Group>(name, cluster, std::move(eps), groups_++);
    regions_.push_back(std::move(region));
  }
}

Locality::~Locality() = default;

void Locality::prepare(WorkerLbState& state) const {
  state.groups.clear();
  state.groups.reserve(groups_);
  for (size_t i = 0; i < groups_; ++i) {
    auto& g = state.groups.emplace_back(state.current_weight.size(), state.next_random());
    g.cursor = g.next_random();
  }
}

const Locality::Region* Locality::find(std::string_view name) const {
  for (const auto& r : regions_) {
    if (r->group->name == name) return r.get();
  }
  return nullptr;
}

const Endpoint* Locality::pick_in(const Group& group, const PickContext& ctx,
                                  WorkerLbState& state) const {
  if (!bounded_load_ || &group == all_.get()) {
    return group.strategy->pick(ctx, state.groups[group.slot]);
  }
  // Bounded load inside a region caps endpoints against the region's own requests in flight,
  // not the cluster's average (a busy region would otherwise have every endpoint over it).
  PickContext inner = ctx;
  inner.usable_endpoints = group.usable.load(std::memory_order_relaxed);
  inner.cluster_in_flight = 0;
  for (const auto& ep : group.endpoints) {
    inner.cluster_in_flight += ep.state->active_requests.load(std::memory_order_relaxed);
  }
  return group.strategy->pick(inner, state.groups[group.slot]);
}

const Endpoint* Locality::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (state.groups.size() != groups_) prepare(state);  // a state the worker did not prepare
  ctx.locality = LocalityOutcome::kNone;
  if (ctx.client_region.empty()) return pick_in(*all_, ctx, state);
  const Region* local = find(ctx.client_region);
  const uint32_t usable = local ? local->group->usable.load(std::memory_order_relaxed) : 0;
  bool stay = usable > 0;
  if (stay && ctx.cross_region != config::CrossRegion::kDeny) {
    // allow: a share equal to the region's deficit spills. failover_only: the region is left
    // as a whole while it counts as unhealthy; the spill's slow fall is the hysteresis that
    // keeps a flapping endpoint from swinging the region back and forth.
    const double spill = local->spill.load(std::memory_order_relaxed);
    stay = ctx.cross_region == config::CrossRegion::kAllow ? spill <= 0 || uniform(state) >= spill
                                                           : spill <= 0;
  }
  if (stay || ctx.cross_region == config::CrossRegion::kDeny) {
    if (local != nullptr) {
      if (zones_ && !ctx.client_zone.empty()) {
        for (const auto& zone : local->zones) {
          if (zone->name != ctx.client_zone || !zone->healthy(min_healthy_)) continue;
          if (const Endpoint* ep = pick_in(*zone, ctx, state)) {
            ctx.locality = LocalityOutcome::kLocal;
            return ep;
          }
        }
      }
      if (const Endpoint* ep = pick_in(*local->group, ctx, state)) {
        // A retry whose every local endpoint was tried already goes to the fallback when it
        // may, rather than back to an endpoint that just failed it.
        if (ctx.was_tried(ep->index) && ctx.cross_region != config::CrossRegion::kDeny) {
          if (const Endpoint* other = fallback(local, ctx, state);
              other != nullptr && !ctx.was_tried(other->index)) {
            return other;
          }
        }
        ctx.locality = LocalityOutcome::kLocal;
        return ep;
      }
    }
    if (ctx.cross_region == config::CrossRegion::kDeny) {
      ctx.locality = LocalityOutcome::kDenied;
      return nullptr;
    }
    // failover_only: the local region counts as unhealthy, or had nothing usable for this
    // request.
  }
  return fallback(local, ctx, state);
}

const Endpoint* Locality::fallback(const Region* local, const PickContext& ctx,
                                   WorkerLbState& state) const {
  const Endpoint* ep = nullptr;
  switch (fallback_) {
    case config::Fallback::kNone:
      return nullptr;
    case config::Fallback::kAny:
      ep = pick_in(*all_, ctx, state);
      break;
    case config::Fallback::kNearest: {
      int32_t nearest = -1;
      if (local != nullptr) {
        nearest = local->nearest.load(std::memory_order_relaxed);
      } else {
        // A client region without endpoints: the nearest region to this proxy.
        double best = -1;
        for (size_t i = 0; i < regions_.size(); ++i) {
          const auto& r = *regions_[i];
          double l = r.latency_ms.load(std::memory_order_relaxed);
          if (!r.group->healthy(min_healthy_)) continue;
          if (nearest < 0 || (l >= 0 && (best < 0 || l < best))) {
            nearest = static_cast<int32_t>(i);
            best = l;
          }
        }
      }
      if (nearest >= 0) ep = pick_in(*regions_[nearest]->group, ctx, state);
      if (ep == nullptr) ep = pick_in(*all_, ctx, state);  // nothing there: anywhere usable
      break;
    }
  }
  if (ep != nullptr) {
    // all_ may land back in the client's own region (its last usable endpoints).
    ctx.locality =
        ep->region == ctx.client_region ? LocalityOutcome::kLocal : LocalityOutcome::kFallback;
  }
  return ep;
}

void Locality::tick() {
  for (auto& r : regions_) {
    r->group->count_usable();
    for (auto& z : r->zones) z->count_usable();
    const double total = static_cast<double>(r->group->endpoints.size());
    const double fraction = r->group->usable.load(std::memory_order_relaxed) / total;
    double target = 0;
    if (fraction <= 0) {
      target = 1;
    } else if (fraction < min_healthy_) {
      target = (min_healthy_ - fraction) / min_healthy_;
    }
    // Until the region has been healthy once (start-up: its endpoints await their first
    // checks) the spill follows the target directly; afterwards it falls gradually.
    const double spill = r->spill.load(std::memory_order_relaxed);
    const bool gradual = r->was_healthy && target < spill;
    r->spill.store(gradual ? std::max(target, spill - kSpillFallPerTick) : target,
                   std::memory_order_relaxed);
    if (fraction >= min_healthy_ && fraction > 0) r->was_healthy = true;
    double sum = 0;
    int n = 0;
    for (const auto& ep : r->group->endpoints) {
      double l = ep.state->latency_ms.load(std::memory_order_relaxed);
      if (l >= 0 && ep.state->usable()) {
        sum += l;
        ++n;
      }
    }
    r->latency_ms.store(n > 0 ? sum / n : -1, std::memory_order_relaxed);
  }
  // Nearest: the healthy other region with the lowest latency (unmeasured ones last); if no
  // other region is healthy, the one with the most usable endpoints... any usable one.
  for (size_t i = 0; i < regions_.size(); ++i) {
    int32_t best = -1;
    auto better = [&](size_t j) {
      if (best < 0) return true;
      const auto& a = *regions_[j];
      const auto& b = *regions_[best];
      bool ah = a.group->healthy(min_healthy_), bh = b.group->healthy(min_healthy_);
      if (ah != bh) return ah;
      double la = a.latency_ms.load(std::memory_order_relaxed);
      double lb = b.latency_ms.load(std::memory_order_relaxed);
      if ((la < 0) != (lb < 0)) return lb < 0;
      return la < lb;
    };
    for (size_t j = 0; j < regions_.size(); ++j) {
      if (j == i || regions_[j]->group->usable.load(std::memory_order_relaxed) == 0) continue;
      if (better(j)) best = static_cast<int32_t>(j);
    }
    regions_[i]->nearest.store(best, std::memory_order_relaxed);
  }
}

std::vector<const Endpoint*> Locality::warm_targets(std::string_view region) const {
  std::vector<const Endpoint*> out;
  const Region* local = find(region);
  if (local == nullptr || fallback_ != config::Fallback::kNearest) return out;
  int32_t nearest = local->nearest.load(std::memory_order_relaxed);
  if (nearest < 0) return out;
  for (const auto& ep : regions_[nearest]->group->endpoints) {
    if (ep.state->usable()) out.push_back(&ep);
  }
  return out;
}

std::vector<Locality::RegionInfo> Locality::regions() const {
  std::vector<RegionInfo> out;
  for (const auto& r : regions_) {
    RegionInfo info;
    info.name = r->group->name;
    info.endpoints = static_cast<uint32_t>(r->group->endpoints.size());
    info.usable = r->group->usable.load(std::memory_order_relaxed);
    info.healthy = r->group->healthy(min_healthy_);
    info.spill = r->spill.load(std::memory_order_relaxed);
    info.latency_ms = r->latency_ms.load(std::memory_order_relaxed);
    int32_t n = r->nearest.load(std::memory_order_relaxed);
    if (n >= 0) info.nearest = regions_[n]->group->name;
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace switchyard::balancer
