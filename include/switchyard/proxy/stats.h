#pragma once

// The proxy's statistics (lock-free, common/stats.h), per listener, cluster and endpoint of a
// snapshot, kept across reloads by name. Written by workers; read by the metrics exposition.
// Plain C++: no Asio.

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "switchyard/common/stats.h"

namespace switchyard::control {
struct Snapshot;
}

namespace switchyard::proxy {

// Upstream response-time buckets, seconds: 0.5 ms .. 30 s (loopback sidecars and slow edge
// backends both resolve).
inline constexpr std::array<double, 15> kDurationBounds{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

struct ListenerStats {
  // TLS handshakes by result (switchyard_downstream_tls_handshakes_total).
  enum : size_t { kTlsSuccess, kTlsFailure, kTlsTimeout, kTlsCount };
  stats::CodeCounters downstream_requests;
  std::atomic<int64_t> connections_active{0};
  stats::Counters<kTlsCount> tls_handshakes;
};

struct ClusterStats {
  enum : size_t {
    kRetries,               // tries that were retries
    kRetryBudgetExhausted,  // retries not made: budget spent
    kWarmConnections,       // opened ahead of a failover
    kHedges,                // backup tries sent (routes[].hedge)
    kHedgeWins,             // requests answered by their backup try
    kCount,
  };
  ClusterStats() : upstream_duration(kDurationBounds) {}
  stats::Histogram upstream_duration;  // pick to end of response
  stats::Counters<kCount> counters;
  // Requests of the cluster in flight that have retried (all workers): the retry budget's
  // floor (proxy/retry.h).
  std::atomic<int64_t> active_retries{0};
};

struct EndpointStats {
  stats::CodeCounters upstream_requests;  // responses received, by status
  stats::Counters<1> connect_failures;
};

// The statistics of one snapshot, in its order, with the snapshot they belong to (readers off
// the workers, the metrics exposition, take both from here and so always a matching pair).
struct StatsTable {
  uint64_t version = 0;
  std::shared_ptr<const control::Snapshot> snapshot;
  std::vector<std::shared_ptr<ListenerStats>> listeners;
  std::vector<std::shared_ptr<ClusterStats>> clusters;
  std::vector<std::vector<std::shared_ptr<EndpointStats>>> endpoints;  // [cluster][endpoint]
};

// Keeps the statistics by name across reloads and builds each snapshot's table. build() on
// the control thread; current() and access_log_dropped() from any thread.
class StatsRegistry {
 public:
  std::shared_ptr<const StatsTable> build(std::shared_ptr<const control::Snapshot> snapshot);
  std::shared_ptr<const StatsTable> current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return current_;
  }
  void access_log_dropped(uint64_t n) { dropped_.add(0, n); }
  uint64_t access_log_dropped() const { return dropped_.value(0); }

 private:
  std::map<std::string, std::shared_ptr<ListenerStats>> listeners_;
  std::map<std::string, std::shared_ptr<ClusterStats>> clusters_;
  std::map<std::string, std::shared_ptr<EndpointStats>> endpoints_;  // by endpoint key
  mutable std::mutex mutex_;
  std::shared_ptr<const StatsTable> current_;
  stats::Counters<1> dropped_;
};

}  // namespace switchyard::proxy
