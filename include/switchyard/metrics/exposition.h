#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "switchyard/discovery/discovery.h"
#include "switchyard/proxy/stats.h"

namespace switchyard::metrics {

// Process-wide counters that belong to no snapshot.
struct ProcessCounters {
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  uint64_t access_log_dropped = 0;
  uint64_t log_dropped = 0;  // stderr lines left out (full queue, or a reason over its rate)
  std::vector<discovery::SourceStatus> discovery;  // each discovery source's state
};

// The Prometheus text exposition (format 0.0.4) of every family, for the listeners, clusters
// and endpoints of one snapshot only (stats.snapshot), so that the series of what a reload
// removed disappear with it. Every module's state is read through its own small interface:
// the proxy's counters, the balancer's ClusterBalancer (members, regions, load estimates,
// its counters), the breaker's and health checks' per-endpoint state. Gauges are sampled now.
// Any thread (the admin thread); takes no lock the request path takes.
std::string render(const proxy::StatsTable& stats, const ProcessCounters& process);

}  // namespace switchyard::metrics
