#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "switchyard/common/net.h"
#include "switchyard/metrics/metrics.h"

namespace switchyard::registry {

// Live state of one endpoint, shared by every snapshot that contains it (same cluster, same
// address) and by every worker. Only relaxed atomics: readers need a recent value, not a
// consistent cut, and a health or ejection flip never rebuilds a strategy table.
struct alignas(64) EndpointState {
  // Process-unique, never reused: indexes per-worker connection pools.
  uint32_t id = 0;
  // The snapshot version that first contained this endpoint.
  uint64_t created_in = 0;
  std::atomic<bool> healthy{true};
  std::atomic<bool> ejected{false};
  std::atomic<int64_t> active_requests{0};
  std::shared_ptr<metrics::EndpointMetrics> metrics;

  bool usable() const {
    return healthy.load(std::memory_order_relaxed) && !ejected.load(std::memory_order_relaxed);
  }
};

// One endpoint as a snapshot sees it: immutable identity and weight plus its live state.
struct Endpoint {
  uint32_t index = 0;  // position in the snapshot's endpoint list
  std::string address_text;
  SocketAddress address;
  std::string region;
  std::string zone;
  uint32_t weight = 1;
  std::shared_ptr<EndpointState> state;
};

}  // namespace switchyard::registry
