#include "switchyard/proxy/stats.h"

#include "switchyard/control/runtime.h"

namespace switchyard::proxy {

std::shared_ptr<const StatsTable> StatsRegistry::build(
    std::shared_ptr<const control::Snapshot> snap) {
  const control::Snapshot& snapshot = *snap;
  auto out = std::make_shared<StatsTable>();
  out->version = snapshot.version;
  out->snapshot = std::move(snap);
  std::map<std::string, std::shared_ptr<ListenerStats>> listeners;
  std::map<std::string, std::shared_ptr<ClusterStats>> clusters;
  std::map<std::string, std::shared_ptr<EndpointStats>> endpoints;
  for (const auto& l : snapshot.listeners) {
    auto& slot = listeners_[l.config->name];
    if (!slot) slot = std::make_shared<ListenerStats>();
    listeners[l.config->name] = slot;
    out->listeners.push_back(slot);
  }
  for (const auto& c : snapshot.registry->clusters) {
    auto& slot = clusters_[c.config->name];
    if (!slot) slot = std::make_shared<ClusterStats>();
    clusters[c.config->name] = slot;
    out->clusters.push_back(slot);
    auto& eps = out->endpoints.emplace_back();
    for (const auto& ep : c.endpoints) {
      auto& es = endpoints_[ep.key];
      if (!es) es = std::make_shared<EndpointStats>();
      endpoints[ep.key] = es;
      eps.push_back(es);
    }
  }
  // What left the configuration leaves the statistics (a snapshot still in use keeps its own).
  listeners_ = std::move(listeners);
  clusters_ = std::move(clusters);
  endpoints_ = std::move(endpoints);
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = out;
  return out;
}

}  // namespace switchyard::proxy
