#include "switchyard/registry/registry.h"

#include <algorithm>
#include <chrono>

#include "switchyard/common/logging.h"

namespace switchyard::registry {

std::shared_ptr<const RuntimeSnapshot> Registry::build(std::shared_ptr<const config::Config> cfg) {
  auto snap = std::make_shared<RuntimeSnapshot>();
  snap->version = next_version_++;
  snap->config = cfg;
  std::map<std::string, std::shared_ptr<EndpointState>> live;
  for (size_t ci = 0; ci < cfg->clusters.size(); ++ci) {
    const auto& cc = cfg->clusters[ci];
    auto cs = std::make_unique<ClusterSnapshot>();
    cs->config = &cc;
    cs->index = static_cast<uint32_t>(ci);
    cs->metrics = metrics_.cluster(cc.name);
    auto& cluster_state = cluster_states_[cc.name];
    if (!cluster_state) cluster_state = std::make_shared<ClusterState>();
    cs->state = cluster_state;
    for (size_t ei = 0; ei < cc.endpoints.size(); ++ei) {
      const auto& ec = cc.endpoints[ei];
      auto key = cc.name + '\0' + ec.address_text;
      auto& state = states_[key];
      if (!state) {
        state = std::make_shared<EndpointState>();
        state->id = next_endpoint_id_++;
        state->created_in = snap->version;
        // An endpoint of a health-checked cluster is not used before its first check passes
        // (HealthChecker); it is marked here, before any worker can see it.
        state->healthy.store(!cc.health_check.has_value(), std::memory_order_relaxed);
        state->metrics = metrics_.endpoint(cc.name, ec.address_text);
      }
      live[key] = state;
      Endpoint ep;
      ep.index = static_cast<uint32_t>(ei);
      ep.address_text = ec.address_text;
      ep.address = ec.address;
      ep.region = ec.region;
      ep.zone = ec.zone;
      ep.weight = ec.weight;
      ep.base_cpu = ec.cpu_usage.value_or(0.5);
      ep.base_memory = ec.memory_usage.value_or(0.5);
      ep.state = state;
      cs->endpoints.push_back(std::move(ep));
    }
    auto started = std::chrono::steady_clock::now();
    cs->strategy = balancer::build_strategy(cc, cs->endpoints);
    if (cc.strategy == config::Strategy::kConsistentHash ||
        cc.strategy == config::Strategy::kMaglev) {
      cs->metrics->ring_rebuild.observe_ns(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                               started)
              .count()));
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
  for (const auto& lc : cfg->listeners) {
    auto ls = std::make_unique<ListenerSnapshot>(
        ListenerSnapshot{&lc, routing::Router(lc), metrics_.listener(lc.name), asserted});
    snap->listeners.push_back(std::move(ls));
  }
  // Endpoints that left the config drop out of the state map; snapshots (and in-flight
  // requests) still holding them keep them alive until they finish.
  states_ = std::move(live);
  {
    std::lock_guard<std::mutex> lock(current_mutex_);
    current_ = snap;
  }
  return snap;
}

}  // namespace switchyard::registry
