#include "locality.h"

#include <algorithm>
#include <map>

#include "region_forecast.h"

namespace switchyard::balancer {
namespace {

constexpr double kSpillFallPerTick = 0.05;

}  // namespace

Locality::Locality(const config::Cluster& cc, const Policy& policy, const ClusterState& state,
                   const Members& members, bool zones, size_t& next_slot)
    : predictive_(cc.locality->predictive.enabled),
      zones_(zones),
      min_healthy_(cc.locality->min_healthy_fraction),
      fallback_(cc.locality->fallback) {
  std::map<std::string, Members> by_region;
  for (const auto& m : members) by_region[m.endpoint->region].push_back(m);
  for (auto& [name, refs] : by_region) {
    auto region = std::make_unique<Region>();
    if (zones_) {
      std::map<std::string, Members> by_zone;
      for (const auto& m : refs) {
        if (!m.endpoint->zone.empty()) by_zone[m.endpoint->zone].push_back(m);
      }
      for (auto& [zone, zrefs] : by_zone) {
        region->zones.push_back(std::make_unique<Group>(zone, cc, policy, state, std::move(zrefs),
                                                        next_slot++, nullptr));
      }
    }
    region->group =
        std::make_unique<Group>(name, cc, policy, state, std::move(refs), next_slot++, nullptr);
    regions_.push_back(std::move(region));
  }
}

const Region* Locality::find(std::string_view name) const {
  for (const auto& r : regions_) {
    if (r->group->name == name) return r.get();
  }
  return nullptr;
}

// The locality layer (README, "Geographic routing"): the client's region while it has at
// least min_healthy_fraction of its endpoints usable; below that a share of its traffic equal
// to the deficit spills to the fallback (allow), or all of it does while the region counts as
// unhealthy (failover_only); deny never leaves it.
const EndpointRef* Locality::choose(const ClusterBalancer& door, const PickRequest& req,
                                    PickMemo& memo, WorkerCluster& worker, int64_t in_flight,
                                    LocalityOutcome& outcome) const {
  const PickInput in{req.hash_key, req.has_hash_key, memo.attempt, req.now_ns};
  outcome = LocalityOutcome::kNone;
  const Region* local = find(req.client_region);
  const uint32_t usable = local ? local->group->usable.load(kRelaxed) : 0;
  bool stay = usable > 0;
  if (stay && req.cross_region != config::CrossRegion::kDeny) {
    // The spill's slow fall is the hysteresis that keeps a flapping endpoint from swinging the
    // region back and forth.
    const double spill = local->spill.load(kRelaxed);
    stay = req.cross_region == config::CrossRegion::kAllow
               ? spill <= 0 || worker.groups[door.all_->slot].uniform() >= spill
               : spill <= 0;
  }
  if (stay || req.cross_region == config::CrossRegion::kDeny) {
    if (local != nullptr) {
      if (zones_ && !req.client_zone.empty()) {
        for (const auto& zone : local->zones) {
          if (zone->name != req.client_zone || !zone->healthy(min_healthy_)) continue;
          if (const EndpointRef* ep = door.pick_in(*zone, in, memo, worker, in_flight)) {
            outcome = LocalityOutcome::kLocal;
            return ep;
          }
        }
      }
      if (const EndpointRef* ep = door.pick_in(*local->group, in, memo, worker, in_flight)) {
        // A retry whose every local endpoint was tried already goes to the fallback when it
        // may, rather than back to an endpoint that just failed it.
        if (was_tried(memo, ep->index) && req.cross_region != config::CrossRegion::kDeny) {
          LocalityOutcome other_outcome;
          if (const EndpointRef* other =
                  fallback(door, local, req, memo, worker, in_flight, other_outcome);
              other != nullptr && !was_tried(memo, other->index)) {
            outcome = other_outcome;
            return other;
          }
        }
        outcome = LocalityOutcome::kLocal;
        return ep;
      }
    }
    if (req.cross_region == config::CrossRegion::kDeny) {
      outcome = LocalityOutcome::kDenied;
      return nullptr;
    }
  }
  return fallback(door, local, req, memo, worker, in_flight, outcome);
}

const EndpointRef* Locality::fallback(const ClusterBalancer& door, const Region* local,
                                      const PickRequest& req, PickMemo& memo, WorkerCluster& worker,
                                      int64_t in_flight, LocalityOutcome& outcome) const {
  const PickInput in{req.hash_key, req.has_hash_key, memo.attempt, req.now_ns};
  const EndpointRef* ep = nullptr;
  switch (fallback_) {
    case config::Fallback::kNone:
      return nullptr;
    case config::Fallback::kAny:
      ep = door.pick_in(*door.all_, in, memo, worker, in_flight);
      break;
    case config::Fallback::kNearest: {
      int32_t nearest = -1;
      if (local != nullptr) {
        nearest = local->nearest.load(kRelaxed);
      } else {
        // A client region without endpoints: the nearest region to this proxy.
        double best = -1;
        for (size_t i = 0; i < regions_.size(); ++i) {
          const auto& r = *regions_[i];
          double l = r.latency_ms.load(kRelaxed);
          if (!r.sound(min_healthy_)) continue;
          if (nearest < 0 || (l >= 0 && (best < 0 || l < best))) {
            nearest = static_cast<int32_t>(i);
            best = l;
          }
        }
      }
      if (nearest >= 0) ep = door.pick_in(*regions_[nearest]->group, in, memo, worker, in_flight);
      if (ep == nullptr)
        ep = door.pick_in(*door.all_, in, memo, worker, in_flight);  // anywhere usable
      break;
    }
  }
  if (ep != nullptr) {
    // The whole cluster may land back in the client's own region (its last usable endpoints).
    outcome = ep->endpoint->region == req.client_region ? LocalityOutcome::kLocal
                                                        : LocalityOutcome::kFallback;
  }
  return ep;
}

void Locality::tick(const config::Locality& cfg) {
  const auto& prediction = cfg.predictive;
  const double recovery_ticks = std::max(
      1.0, std::chrono::duration<double>(prediction.recovery).count() / forecast::kTickSeconds);
  for (auto& r : regions_) {
    r->group->count_usable();
    for (auto& z : r->zones) z->count_usable();
    const double total = static_cast<double>(r->group->members.size());
    const double fraction = r->group->usable.load(kRelaxed) / total;
    const double target = forecast::shortfall(fraction, min_healthy_);
    double predicted_target = 0;
    if (predictive_) {
      double healthy = 0;
      for (const auto& m : r->group->members) {
        auto& t = m.load->trend;
        forecast::observe(t, m.load->latency_ms.load(kRelaxed), m.breaker->successes.load(kRelaxed),
                          m.breaker->failures.load(kRelaxed), prediction);
        if (m.usable()) healthy += t.health;
      }
      const double p = healthy / total;
      r->predicted.store(p, kRelaxed);
      summarise_trends(*r);
      predicted_target = forecast::shortfall(p, min_healthy_);
    } else {
      r->predicted.store(-1, kRelaxed);
    }
    // Until the region has been healthy once (start-up: its endpoints await their first
    // checks) the spill follows the target directly; afterwards it falls gradually: the
    // hysteresis that keeps a flapping endpoint from swinging the region back and forth (a
    // predicted spill falls slower still, over `recovery`).
    const double spill = r->spill.load(kRelaxed);
    const double wanted = std::max(target, predicted_target);
    double next = wanted;
    if (r->was_healthy && wanted < spill) {
      const bool predicted = r->cause.load(kRelaxed) == 2;
      next = std::max(wanted, spill - (predicted ? 1.0 / recovery_ticks : kSpillFallPerTick));
    }
    r->spill.store(next, kRelaxed);
    if (next <= 0) {
      r->cause.store(0, kRelaxed);
    } else if (wanted > 0) {
      r->cause.store(target >= predicted_target ? 1 : 2, kRelaxed);
    }
    if (fraction >= min_healthy_ && fraction > 0) r->was_healthy = true;
    double sum = 0;
    int n = 0;
    for (const auto& m : r->group->members) {
      double l = m.load->latency_ms.load(kRelaxed);
      if (l >= 0 && m.usable()) {
        sum += l;
        ++n;
      }
    }
    r->latency_ms.store(n > 0 ? sum / n : -1, kRelaxed);
  }
  // Nearest: the healthy other region with the lowest latency (unmeasured ones last); if no
  // other region is healthy, any usable one.
  for (size_t i = 0; i < regions_.size(); ++i) {
    int32_t best = -1;
    auto better = [&](size_t j) {
      if (best < 0) return true;
      const auto& a = *regions_[j];
      const auto& b = *regions_[best];
      bool ah = a.sound(min_healthy_), bh = b.sound(min_healthy_);
      if (ah != bh) return ah;
      double la = a.latency_ms.load(kRelaxed);
      double lb = b.latency_ms.load(kRelaxed);
      if ((la < 0) != (lb < 0)) return lb < 0;
      return la < lb;
    };
    for (size_t j = 0; j < regions_.size(); ++j) {
      if (j == i || regions_[j]->group->usable.load(kRelaxed) == 0) continue;
      if (better(j)) best = static_cast<int32_t>(j);
    }
    regions_[i]->nearest.store(best, kRelaxed);
  }
}

std::vector<const EndpointRef*> Locality::warm_targets(std::string_view region) const {
  std::vector<const EndpointRef*> out;
  const Region* local = find(region);
  if (local == nullptr || fallback_ != config::Fallback::kNearest) return out;
  int32_t nearest = local->nearest.load(kRelaxed);
  if (nearest < 0) return out;
  for (const auto& m : regions_[nearest]->group->members) {
    if (m.usable()) out.push_back(&m);
  }
  return out;
}

// Control thread: the region's prediction figures from its endpoints' trends, for regions().
void Locality::summarise_trends(Region& r) {
  std::vector<double> baseline, trend, predicted;
  double errors = 0;
  uint32_t failing = 0;
  for (const auto& m : r.group->members) {
    const auto& t = m.load->trend;
    if (t.baseline_ms >= 0) baseline.push_back(t.baseline_ms);
    trend.push_back(t.slope_ms_per_s);
    if (t.predicted_ms >= 0) predicted.push_back(t.predicted_ms);
    errors += t.error_rate;
    if (!m.usable() || t.health < 0.5) ++failing;
  }
  auto median = [](std::vector<double>& v) {
    if (v.empty()) return -1.0;
    std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  r.baseline_ms.store(median(baseline), kRelaxed);
  r.trend_ms_per_s.store(trend.empty() ? 0 : median(trend), kRelaxed);
  r.predicted_ms.store(median(predicted), kRelaxed);
  r.error_rate.store(
      r.group->members.empty() ? 0 : errors / static_cast<double>(r.group->members.size()),
      kRelaxed);
  r.failing.store(failing, kRelaxed);
}

RegionStatus Locality::status_of(const Region& r) const {
  RegionStatus info;
  info.name = r.group->name;
  info.endpoints = static_cast<uint32_t>(r.group->members.size());
  info.usable = r.group->usable.load(kRelaxed);
  info.healthy = r.group->healthy(min_healthy_);
  info.spill = r.spill.load(kRelaxed);
  info.latency_ms = r.latency_ms.load(kRelaxed);
  const int32_t n = r.nearest.load(kRelaxed);
  if (n >= 0) info.nearest = regions_[n]->group->name;
  const uint8_t cause = r.cause.load(kRelaxed);
  info.spill_cause = info.spill <= 0 ? "" : cause == 2 ? "predicted" : "unhealthy";
  info.predicted_healthy = r.predicted.load(kRelaxed);
  if (info.predicted_healthy >= 0) {
    info.baseline_ms = r.baseline_ms.load(kRelaxed);
    info.trend_ms_per_s = r.trend_ms_per_s.load(kRelaxed);
    info.predicted_ms = r.predicted_ms.load(kRelaxed);
    info.error_rate = r.error_rate.load(kRelaxed);
    info.failing = r.failing.load(kRelaxed);
  }
  return info;
}

std::vector<RegionStatus> Locality::regions() const {
  std::vector<RegionStatus> out;
  for (const auto& r : regions_) out.push_back(status_of(*r));
  return out;
}

}  // namespace switchyard::balancer
