#pragma once

// The statistics switchyard keeps per listener, cluster and endpoint (lock-free: common/stats.h),
// and their Prometheus exposition. Handles are created once per listener, cluster and endpoint
// on the control thread; the request path only increments them (no label lookup, no lock).
// The exposition (exposition.h) is built at scrape time from the current snapshot, so the series
// of listeners, clusters and endpoints that a reload removed disappear with them.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "switchyard/common/stats.h"

namespace switchyard::metrics {

// Upstream response-time buckets, seconds: 0.5 ms .. 30 s (loopback sidecars and slow edge
// backends both resolve).
inline constexpr std::array<double, 15> kDurationBounds{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
// Ring and table builds: 0.1 ms .. 1 s.
inline constexpr std::array<double, 9> kRebuildBounds{0.0001, 0.001, 0.005, 0.01, 0.02,
                                                      0.05,   0.1,   0.5,   1};

struct EndpointMetrics {
  stats::CodeCounters upstream_requests;  // responses received, by status
  stats::Counters<1> connect_failures;
  stats::Counters<2> health_checks;  // active checks: passed, failed
};

// The cluster's counters, by index into ClusterMetrics::counters.
enum class ClusterCounter : size_t {
  kNoEndpoint,            // 503: nothing usable to pick
  kRetries,               // tries that were retries
  kRetryBudgetExhausted,  // retries not made: budget spent
  kOverflow,              // 503: max_pending_requests reached
  kEjections,
  kEjectionsSkipped,  // max_ejected_fraction kept an endpoint in
  kLoadReportOk,      // the four load-report results, in balancer::LoadReportResult order
  kLoadReportMalformed,
  kLoadReportInvalidValue,
  kLoadReportDuplicate,
  kPicksLocal,  // locality clusters: picks in the client's region / elsewhere
  kPicksFallback,
  kWarmConnections,  // opened ahead of a failover
  kCount,
};

struct ClusterMetrics {
  ClusterMetrics() : upstream_duration(kDurationBounds), ring_rebuild(kRebuildBounds) {}
  void add(ClusterCounter c, uint64_t n = 1) { counters.add(static_cast<size_t>(c), n); }
  uint64_t value(ClusterCounter c) const { return counters.value(static_cast<size_t>(c)); }

  stats::Histogram upstream_duration;  // pick to end of response
  stats::Histogram ring_rebuild;       // control thread
  stats::Counters<static_cast<size_t>(ClusterCounter::kCount)> counters;
};

struct ListenerMetrics {
  stats::CodeCounters downstream_requests;
  std::atomic<int64_t> connections_active{0};
};

// Owns the handles; a reload that keeps an endpoint (same cluster, same address) keeps its
// handle and so its counts. Control thread, except where noted.
class Metrics {
 public:
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  std::shared_ptr<EndpointMetrics> endpoint(const std::string& cluster, const std::string& address);
  std::shared_ptr<ClusterMetrics> cluster(const std::string& name);
  std::shared_ptr<ListenerMetrics> listener(const std::string& name);
  // Drops the handles nobody else holds any more (listeners, clusters and endpoints that left
  // the configuration and whose last snapshot is gone).
  void prune();

  // Any thread.
  void config_reload(bool success) { reloads_.add(success ? 0 : 1); }
  uint64_t config_reloads(bool success) const { return reloads_.value(success ? 0 : 1); }
  void access_log_dropped(uint64_t n) { access_log_dropped_.add(0, n); }
  uint64_t access_log_dropped() const { return access_log_dropped_.value(0); }

 private:
  std::map<std::string, std::shared_ptr<EndpointMetrics>> endpoints_;
  std::map<std::string, std::shared_ptr<ClusterMetrics>> clusters_;
  std::map<std::string, std::shared_ptr<ListenerMetrics>> listeners_;
  stats::Counters<2> reloads_;  // success, failure
  stats::Counters<1> access_log_dropped_;
};

}  // namespace switchyard::metrics
