#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "switchyard/balancer/strategy.h"
#include "switchyard/config/config.h"
#include "switchyard/metrics/metrics.h"
#include "switchyard/registry/endpoint.h"
#include "switchyard/routing/router.h"

namespace switchyard::registry {

// Everything a worker needs about one cluster, immutable once built: endpoints and the strategy
// table built over them travel together, so a request never sees members of one version with a
// table of another.
// Live counters of one cluster, shared by all its snapshots (kept across reloads by name).
struct ClusterState {
  std::atomic<int64_t> active_tries{0};       // upstream tries in flight
  std::atomic<int64_t> active_retries{0};     // requests in flight that have retried
  std::atomic<uint32_t> usable_endpoints{0};  // refreshed by the control thread (100 ms)
};

struct ClusterSnapshot {
  const config::Cluster* config = nullptr;  // owned by the RuntimeSnapshot's config
  uint32_t index = 0;
  std::vector<Endpoint> endpoints;
  std::unique_ptr<balancer::Strategy> strategy;
  std::shared_ptr<metrics::ClusterMetrics> metrics;
  std::shared_ptr<ClusterState> state;
};

struct ListenerSnapshot {
  const config::Listener* config = nullptr;
  routing::Router router;
  std::shared_ptr<metrics::ListenerMetrics> metrics;
  // Headers switchyard asserts itself (X-Client-Region and every cluster's client_region and
  // client_zone header): an untrusted client's are never forwarded.
  std::vector<std::string> asserted_headers;
};

// One published version of the whole configuration and cluster membership. Built on the
// control thread, posted to every worker, read without locks.
struct RuntimeSnapshot {
  uint64_t version = 0;
  std::shared_ptr<const config::Config> config;
  std::vector<std::unique_ptr<ClusterSnapshot>> clusters;    // same order as config->clusters
  std::vector<std::unique_ptr<ListenerSnapshot>> listeners;  // same order as config->listeners
};

// Owns the long-lived endpoint state and builds snapshots. Control thread only.
class Registry {
 public:
  explicit Registry(metrics::Metrics& metrics) : metrics_(metrics) {}

  // Builds the snapshot for cfg. An endpoint that persists (same cluster name, same address)
  // keeps its EndpointState (health, ejection, in-flight count) across the rebuild.
  std::shared_ptr<const RuntimeSnapshot> build(std::shared_ptr<const config::Config> cfg);

  // Any thread (the admin thread reads it): the last snapshot built.
  std::shared_ptr<const RuntimeSnapshot> current() const {
    std::lock_guard<std::mutex> lock(current_mutex_);
    return current_;
  }

 private:
  metrics::Metrics& metrics_;
  mutable std::mutex current_mutex_;  // not on the request path: workers get posted snapshots
  std::shared_ptr<const RuntimeSnapshot> current_;
  std::map<std::string, std::shared_ptr<EndpointState>> states_;  // key: cluster '\0' address
  std::map<std::string, std::shared_ptr<ClusterState>> cluster_states_;
  uint32_t next_endpoint_id_ = 0;
  uint64_t next_version_ = 1;
};

}  // namespace switchyard::registry
