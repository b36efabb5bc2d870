#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>

namespace switchyard::metrics {

// Counters of one family split by HTTP status code. The handle for a code is looked up by labels
// (prometheus-cpp takes a mutex for that) only the first time that code is seen; afterwards
// increment() is one atomic load plus the counter's own atomic add. Any thread may call it.
class CodeCounters {
 public:
  CodeCounters(prometheus::Family<prometheus::Counter>& family,
               std::map<std::string, std::string> labels);
  void increment(unsigned code);

 private:
  prometheus::Family<prometheus::Counter>& family_;
  std::map<std::string, std::string> labels_;
  std::array<std::atomic<prometheus::Counter*>, 600> by_code_{};
};

struct EndpointMetrics {
  CodeCounters upstream_requests;
  prometheus::Counter& connect_failures;
  // Gauges below are sampled from EndpointState when /metrics is scraped, not per request.
  prometheus::Gauge& healthy;
  prometheus::Gauge& ejected;
  prometheus::Gauge& active_requests;
  prometheus::Gauge& health_score;
  prometheus::Gauge& load_score;
  prometheus::Gauge& load_report_age;  // seconds; -1 before the first report
};

struct ClusterMetrics {
  prometheus::Histogram& upstream_duration;
  prometheus::Counter& no_endpoint;  // 503: nothing usable to pick
  prometheus::Counter& retries;
  prometheus::Counter& retry_budget_exhausted;
  prometheus::Counter& overflow;  // 503: max_pending_requests reached
  prometheus::Counter& ejections;
  prometheus::Counter& ejections_skipped;  // max_ejected_fraction kept an endpoint in
  prometheus::Histogram& ring_rebuild;     // hash ring / Maglev table build time (control)
  // switchyard_load_reports_total by result, indexed by balancer::LoadReportResult.
  std::array<prometheus::Counter*, 4> load_reports;
  // switchyard_picks_total{locality="local"|"fallback"} (clusters with a locality block).
  prometheus::Counter* picks_local;
  prometheus::Counter* picks_fallback;
  prometheus::Counter* warm_connections;  // opened ahead of a failover (locality)
};

struct ListenerMetrics {
  CodeCounters downstream_requests;
  prometheus::Gauge& connections_active;
};

// Owns the registry and every family. Handles are created once per listener, cluster and
// endpoint (control thread) and live as long as the process: a reload that keeps an endpoint
// keeps its series.
class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Control thread only.
  std::shared_ptr<EndpointMetrics> endpoint(const std::string& cluster, const std::string& address);
  std::shared_ptr<ClusterMetrics> cluster(const std::string& name);
  std::shared_ptr<ListenerMetrics> listener(const std::string& name);
  // Per-region gauges of a locality cluster (control thread, at scrape time).
  struct RegionGauges {
    prometheus::Gauge& latency_seconds;
    prometheus::Gauge& usable_endpoints;
    prometheus::Gauge& spill_fraction;
  };
  RegionGauges region(const std::string& cluster, const std::string& region);
  prometheus::Counter& config_reloads(bool success) {
    return success ? reload_success_ : reload_failure_;
  }

  // Prometheus text exposition of every family. Any thread.
  std::string serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& downstream_requests_;
  prometheus::Family<prometheus::Gauge>& downstream_connections_;
  prometheus::Family<prometheus::Counter>& upstream_requests_;
  prometheus::Family<prometheus::Histogram>& upstream_duration_;
  prometheus::Family<prometheus::Counter>& connect_failures_;
  prometheus::Family<prometheus::Counter>& no_endpoint_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& retry_budget_exhausted_;
  prometheus::Family<prometheus::Gauge>& endpoint_healthy_;
  prometheus::Family<prometheus::Gauge>& endpoint_ejected_;
  prometheus::Family<prometheus::Gauge>& endpoint_active_;
  prometheus::Family<prometheus::Counter>& overflow_;
  prometheus::Family<prometheus::Counter>& ejections_;
  prometheus::Family<prometheus::Counter>& ejections_skipped_;
  prometheus::Family<prometheus::Gauge>& endpoint_health_score_;
  prometheus::Family<prometheus::Histogram>& ring_rebuild_;
  prometheus::Family<prometheus::Gauge>& endpoint_load_score_;
  prometheus::Family<prometheus::Gauge>& endpoint_report_age_;
  prometheus::Family<prometheus::Counter>& load_reports_;
  prometheus::Family<prometheus::Counter>& picks_;
  prometheus::Family<prometheus::Counter>& warm_connections_;
  prometheus::Family<prometheus::Gauge>& region_latency_;
  prometheus::Family<prometheus::Gauge>& region_usable_;
  prometheus::Family<prometheus::Gauge>& region_spill_;
  prometheus::Family<prometheus::Counter>& config_reloads_;
  prometheus::Counter& reload_success_;
  prometheus::Counter& reload_failure_;
  std::map<std::string, std::shared_ptr<EndpointMetrics>> endpoints_;
  std::map<std::string, std::shared_ptr<ClusterMetrics>> clusters_;
  std::map<std::string, std::shared_ptr<ListenerMetrics>> listeners_;
};

}  // namespace switchyard::metrics
