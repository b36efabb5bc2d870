#include "switchyard/metrics/metrics.h"

namespace switchyard::metrics {

std::shared_ptr<EndpointMetrics> Metrics::endpoint(const std::string& cluster,
                                                   const std::string& address) {
  auto& slot = endpoints_[cluster + '\0' + address];
  if (!slot) slot = std::make_shared<EndpointMetrics>();
  return slot;
}

std::shared_ptr<ClusterMetrics> Metrics::cluster(const std::string& name) {
  auto& slot = clusters_[name];
  if (!slot) slot = std::make_shared<ClusterMetrics>();
  return slot;
}

std::shared_ptr<ListenerMetrics> Metrics::listener(const std::string& name) {
  auto& slot = listeners_[name];
  if (!slot) slot = std::make_shared<ListenerMetrics>();
  return slot;
}

void Metrics::prune() {
  std::erase_if(endpoints_, [](const auto& kv) { return kv.second.use_count() == 1; });
  std::erase_if(clusters_, [](const auto& kv) { return kv.second.use_count() == 1; });
  std::erase_if(listeners_, [](const auto& kv) { return kv.second.use_count() == 1; });
}

}  // namespace switchyard::metrics
