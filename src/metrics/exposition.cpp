#include "switchyard/metrics/exposition.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

#include "switchyard/balancer/load_report.h"
#include "switchyard/balancer/locality.h"
#include "switchyard/balancer/resource_aware.h"

namespace switchyard::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Families in a fixed order, each created on first use.
class Builder {
 public:
  MetricFamily& family(const char* name, const char* help, MetricType type) {
    for (auto& f : families_) {
      if (f.name == name) return f;
    }
    families_.push_back(MetricFamily{name, help, type, {}});
    return families_.back();
  }

  void counter(const char* name, const char* help, Labels labels, double value) {
    add(family(name, help, MetricType::Counter), std::move(labels)).counter.value = value;
  }
  void gauge(const char* name, const char* help, Labels labels, double value) {
    add(family(name, help, MetricType::Gauge), std::move(labels)).gauge.value = value;
  }
  void histogram(const char* name, const char* help, Labels labels, const stats::Histogram& h) {
    auto snap = h.snapshot();
    auto& m = add(family(name, help, MetricType::Histogram), std::move(labels));
    m.histogram.sample_count = snap.count;
    m.histogram.sample_sum = snap.sum_seconds;
    auto bounds = h.bounds();
    for (size_t i = 0; i < bounds.size(); ++i) {
      m.histogram.bucket.push_back({snap.cumulative[i], bounds[i]});
    }
    m.histogram.bucket.push_back({snap.count, std::numeric_limits<double>::infinity()});
  }
  void codes(const char* name, const char* help, const Labels& labels,
             const stats::CodeCounters& c) {
    auto& f = family(name, help, MetricType::Counter);
    c.for_each([&](unsigned code, uint64_t n) {
      Labels l = labels;
      l.push_back({"code", code == 0 ? "other" : std::to_string(code)});
      add(f, std::move(l)).counter.value = static_cast<double>(n);
    });
  }

  std::string serialize() { return prometheus::TextSerializer().Serialize(families_); }

 private:
  static ClientMetric& add(MetricFamily& f, Labels labels) {
    std::sort(labels.begin(), labels.end());  // as prometheus-cpp orders them
    f.metric.push_back(ClientMetric{});
    f.metric.back().label = std::move(labels);
    return f.metric.back();
  }
  std::vector<MetricFamily> families_;
};

}  // namespace

std::string render(const registry::RuntimeSnapshot& snapshot, const Metrics& metrics) {
  Builder b;
  // Declared up front so that the order of families is stable whatever is configured.
  b.family("switchyard_downstream_requests_total",
           "Requests answered to clients, by listener and status code", MetricType::Counter);
  b.family("switchyard_downstream_connections_active", "Open client connections, by listener",
           MetricType::Gauge);
  for (const auto& l : snapshot.listeners) {
    Labels labels{{"listener", l->config->name}};
    b.codes("switchyard_downstream_requests_total",
            "Requests answered to clients, by listener and status code", labels,
            l->metrics->downstream_requests);
    b.gauge("switchyard_downstream_connections_active", "Open client connections, by listener",
            labels,
            static_cast<double>(l->metrics->connections_active.load(std::memory_order_relaxed)));
  }
  const int64_t now_ns = balancer::steady_now_ns();
  for (const auto& cluster : snapshot.clusters) {
    const auto& name = cluster->config->name;
    const Labels cl{{"cluster", name}};
    const auto& cm = *cluster->metrics;
    b.histogram("switchyard_upstream_request_duration_seconds",
                "Time from picking an endpoint to the end of its response", cl,
                cm.upstream_duration);
    auto counter = [&](const char* n, const char* help, ClusterCounter c) {
      b.counter(n, help, cl, static_cast<double>(cm.value(c)));
    };
    counter("switchyard_cluster_no_endpoint_total",
            "Requests answered 503 because no endpoint was usable", ClusterCounter::kNoEndpoint);
    counter("switchyard_upstream_retries_total", "Upstream tries that were retries",
            ClusterCounter::kRetries);
    counter("switchyard_upstream_retry_budget_exhausted_total",
            "Retries not made because the retry budget was spent",
            ClusterCounter::kRetryBudgetExhausted);
    counter("switchyard_upstream_overflow_total",
            "Requests answered 503 because the cluster was at max_pending_requests",
            ClusterCounter::kOverflow);
    counter("switchyard_outlier_ejections_total", "Endpoints ejected by the circuit breaker",
            ClusterCounter::kEjections);
    counter("switchyard_outlier_ejections_skipped_total",
            "Ejections not made because of max_ejected_fraction",
            ClusterCounter::kEjectionsSkipped);
    b.histogram("switchyard_hash_ring_rebuild_seconds",
                "Time to build a cluster's hash ring or Maglev table", cl, cm.ring_rebuild);
    for (size_t r = 0; r < 4; ++r) {
      auto result = static_cast<balancer::LoadReportResult>(r);
      b.counter("switchyard_load_reports_total",
                "endpoint-load-metrics headers received, by parse result",
                {{"cluster", name}, {"result", std::string(balancer::to_string(result))}},
                static_cast<double>(cm.counters.value(
                    static_cast<size_t>(ClusterCounter::kLoadReportOk) + r)));
    }
    b.counter("switchyard_picks_total",
              "Picks of a locality cluster: in the client's region, or fallback",
              {{"cluster", name}, {"locality", "local"}},
              static_cast<double>(cm.value(ClusterCounter::kPicksLocal)));
    b.counter("switchyard_picks_total",
              "Picks of a locality cluster: in the client's region, or fallback",
              {{"cluster", name}, {"locality", "fallback"}},
              static_cast<double>(cm.value(ClusterCounter::kPicksFallback)));
    counter("switchyard_upstream_warm_connections_total",
            "Idle connections opened to the nearest fallback region",
            ClusterCounter::kWarmConnections);

    balancer::LoadModel model(cluster->config->resource_aware);
    for (const auto& ep : cluster->endpoints) {
      const auto& s = *ep.state;
      const Labels el{{"cluster", name}, {"endpoint", ep.address_text}};
      b.codes("switchyard_upstream_requests_total",
              "Responses received from endpoints, by status code", el,
              s.metrics->upstream_requests);
      b.counter("switchyard_upstream_connect_failures_total",
                "Failed connection attempts to endpoints", el,
                static_cast<double>(s.metrics->connect_failures.value(0)));
      for (int passed = 1; passed >= 0; --passed) {
        Labels hl = el;
        hl.push_back({"result", passed ? "pass" : "fail"});
        b.counter("switchyard_health_checks_total", "Active health checks, by result", hl,
                  static_cast<double>(s.metrics->health_checks.value(passed ? 0 : 1)));
      }
      b.gauge("switchyard_endpoint_healthy", "1 if the endpoint passes health checks", el,
              s.healthy.load(std::memory_order_relaxed) ? 1 : 0);
      b.gauge("switchyard_endpoint_ejected",
              "1 while the circuit breaker has ejected the endpoint", el, s.ejected() ? 1 : 0);
      b.gauge("switchyard_endpoint_active_requests", "Requests in flight to the endpoint", el,
              static_cast<double>(s.active_requests.load(std::memory_order_relaxed)));
      b.gauge("switchyard_endpoint_health_score",
              "Health score in (0, 1]: EWMA of request and check results", el,
              s.health_score.load(std::memory_order_relaxed));
      auto load = model.estimate(ep, now_ns);
      b.gauge("switchyard_endpoint_load_score", "Resource-aware load score of the endpoint", el,
              load.score);
      b.gauge("switchyard_endpoint_load_report_age_seconds",
              "Age of the endpoint's last load report; -1 before the first", el,
              load.report_age_s);
    }
    if (const auto* locality = dynamic_cast<const balancer::Locality*>(cluster->strategy.get())) {
      for (const auto& r : locality->regions()) {
        const Labels rl{{"cluster", name}, {"region", r.name}};
        b.gauge("switchyard_region_latency_seconds",
                "Mean round-trip EWMA of a region's usable endpoints", rl,
                r.latency_ms < 0 ? -1 : r.latency_ms / 1000);
        b.gauge("switchyard_region_usable_endpoints", "Usable endpoints of a region", rl,
                r.usable);
        b.gauge("switchyard_region_spill_fraction", "Share of a region's clients sent to the fallback",
                rl, r.spill);
      }
    }
  }
  b.counter("switchyard_config_reloads_total", "Configuration reloads, by result",
            {{"result", "success"}}, static_cast<double>(metrics.config_reloads(true)));
  b.counter("switchyard_config_reloads_total", "Configuration reloads, by result",
            {{"result", "failure"}}, static_cast<double>(metrics.config_reloads(false)));
  b.counter("switchyard_access_log_dropped_total",
            "Access log lines dropped because the log's buffer was full (stdout not read)", {},
            static_cast<double>(metrics.access_log_dropped()));
  return b.serialize();
}

}  // namespace switchyard::metrics
