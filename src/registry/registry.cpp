#include "switchyard/registry/registry.h"

#include <algorithm>

namespace switchyard::registry {

std::shared_ptr<const Membership> Registry::build(std::shared_ptr<const config::Config> cfg) {
  auto snap = std::make_shared<Membership>();
  snap->version = next_version_++;
  snap->config = cfg;
  std::map<std::string, uint32_t> live;
  for (size_t ci = 0; ci < cfg->clusters.size(); ++ci) {
    const auto& cc = cfg->clusters[ci];
    ClusterMembership cs;
    cs.config = &cc;
    cs.index = static_cast<uint32_t>(ci);
    for (size_t ei = 0; ei < cc.endpoints.size(); ++ei) {
      const auto& ec = cc.endpoints[ei];
      Endpoint ep;
      ep.index = static_cast<uint32_t>(ei);
      ep.key = cc.name + '\0' + ec.address_text;
      auto known = ids_.find(ep.key);
      ep.id = known != ids_.end() ? known->second : next_id_++;
      live[ep.key] = ep.id;
      ep.address_text = ec.address_text;
      ep.address = ec.address;
      ep.region = ec.region;
      ep.zone = ec.zone;
      ep.weight = ec.weight;
      ep.priority = ec.priority;
      ep.base_cpu = ec.cpu_usage.value_or(0.5);
      ep.base_memory = ec.memory_usage.value_or(0.5);
      cs.endpoints.push_back(std::move(ep));
    }
    snap->clusters.push_back(std::move(cs));
  }
  std::vector<std::string> asserted{"X-Client-Region"};
  for (const auto& cc : cfg->clusters) {
    if (!cc.locality) continue;
    for (const auto& h : {cc.locality->client_region_header, cc.locality->client_zone_header}) {
      if (!h.empty() && std::find(asserted.begin(), asserted.end(), h) == asserted.end()) {
        asserted.push_back(h);
      }
    }
  }
  for (const auto& lc : cfg->listeners) snap->listeners.push_back(ListenerInfo{&lc, asserted});
  // Endpoints that left the config give up their id; one that comes back later gets a new one
  // (and fresh state everywhere).
  ids_ = std::move(live);
  {
    std::lock_guard<std::mutex> lock(current_mutex_);
    current_ = snap;
  }
  return snap;
}

}  // namespace switchyard::registry
