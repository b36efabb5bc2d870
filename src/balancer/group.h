#pragma once

// Private to the balancer module. A group of a cluster's members that a pick draws from with a
// table of its own: the whole cluster, a priority level, a region or a zone.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "switchyard/balancer/front_door.h"

namespace switchyard::balancer {

inline constexpr auto kRelaxed = std::memory_order_relaxed;

// A set of members with its own table (a copy of the cluster's EndpointRef entries: same
// identity and state, positions of their own).
struct Group {
  std::string name;
  Members members;
  std::unique_ptr<PolicyTable> table;
  size_t slot = 0;  // its WorkerLbState in WorkerCluster::groups
  std::atomic<uint32_t> usable{0};

  Group(std::string n, const config::Cluster& cluster, const Policy& policy,
        const ClusterState& state, Members m, size_t s, ClusterStats* timed)
      : name(std::move(n)), members(std::move(m)), slot(s) {
    auto started = std::chrono::steady_clock::now();
    table = policy.build(cluster, members, state);
    if (timed != nullptr) {
      timed->ring_rebuild.observe_ns(
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count()));
    }
    usable = static_cast<uint32_t>(members.size());
  }
  bool healthy(double min_fraction) const {
    uint32_t u = usable.load(kRelaxed);
    return u > 0 && u >= min_fraction * static_cast<double>(members.size());
  }
  void count_usable() {
    uint32_t u = 0;
    for (const auto& m : members) u += m.usable() ? 1 : 0;
    usable.store(u, kRelaxed);
  }
  int64_t in_flight() const {
    int64_t n = 0;
    for (const auto& m : members) n += m.load->active_requests.load(kRelaxed);
    return n;
  }
};

// Whether this request tried the endpoint at `index` already.
inline bool was_tried(const PickMemo& memo, uint32_t index) {
  for (uint32_t i = 0; i < memo.tried_count; ++i) {
    if (memo.tried[i] == index) return true;
  }
  return false;
}

}  // namespace switchyard::balancer
