#pragma once

#include <cstdint>
#include <string>

#include "switchyard/common/net.h"

namespace switchyard::registry {

// One endpoint as a snapshot sees it: its identity and weight, nothing live. Modules keep their
// own state per endpoint (health::EndpointHealth, breaker::EndpointBreaker,
// balancer::EndpointLoad, the proxy's counters), keyed by `key` so that it survives reloads.
struct Endpoint {
  uint32_t index = 0;  // position in the cluster's endpoint list (this snapshot)
  // Process-unique while the endpoint stays configured (same cluster, same address), never
  // reused: indexes per-worker connection pools.
  uint32_t id = 0;
  std::string key;  // cluster name '\0' address: the identity across reloads
  std::string address_text;
  SocketAddress address;
  std::string region;
  std::string zone;
  uint32_t weight = 1;
  uint16_t priority = 0;  // its priority level (0 first)
  // Static load (config metadata cpu_usage / memory_usage), 0.5 when absent: the starting
  // values before any report, and what an old report fades back to.
  double base_cpu = 0.5;
  double base_memory = 0.5;
};

}  // namespace switchyard::registry
