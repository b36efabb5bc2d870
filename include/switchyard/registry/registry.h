#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "switchyard/config/config.h"
#include "switchyard/registry/endpoint.h"

namespace switchyard::registry {

// The membership of one cluster in one configuration version.
struct ClusterMembership {
  const config::Cluster* config = nullptr;  // owned by the Membership's config
  uint32_t index = 0;
  std::vector<Endpoint> endpoints;
};

struct ListenerInfo {
  const config::Listener* config = nullptr;
  // Headers switchyard asserts itself (X-Client-Region and every cluster's client_region and
  // client_zone header): an untrusted client's are never forwarded.
  std::vector<std::string> asserted_headers;
};

// One configuration version's listeners, clusters and endpoints, with identities that are
// stable across versions. Immutable once built.
struct Membership {
  uint64_t version = 0;
  std::shared_ptr<const config::Config> config;
  std::vector<ClusterMembership> clusters;  // same order as config->clusters
  std::vector<ListenerInfo> listeners;      // same order as config->listeners
};

// Builds snapshots: gives every endpoint an id that stays while its (cluster, address) stays
// configured. Nothing else: the modules that keep live state per endpoint attach it themselves
// (control::Runtime composes them). Control thread, except current().
class Registry {
 public:
  std::shared_ptr<const Membership> build(std::shared_ptr<const config::Config> cfg);

  // Any thread: the last snapshot built.
  std::shared_ptr<const Membership> current() const {
    std::lock_guard<std::mutex> lock(current_mutex_);
    return current_;
  }

 private:
  mutable std::mutex current_mutex_;  // not on the request path: workers get posted snapshots
  std::shared_ptr<const Membership> current_;
  std::map<std::string, uint32_t> ids_;  // key: cluster '\0' address
  uint32_t next_id_ = 0;
  uint64_t next_version_ = 1;
};

}  // namespace switchyard::registry
