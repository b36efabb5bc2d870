#include "switchyard/metrics/exposition.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

#include "switchyard/balancer/front_door.h"
#include "switchyard/balancer/load_report.h"
#include "switchyard/control/runtime.h"

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
    auto snap = h.read();
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

std::string render(const proxy::StatsTable& stats, const ProcessCounters& process) {
  const control::Snapshot& snapshot = *stats.snapshot;
  Builder b;
  // Declared up front so that the order of families is stable whatever is configured.
  b.family("switchyard_downstream_requests_total",
           "Requests answered to clients, by listener and status code", MetricType::Counter);
  b.family("switchyard_downstream_connections_active", "Open client connections, by listener",
           MetricType::Gauge);
  for (size_t li = 0; li < snapshot.listeners.size(); ++li) {
    const auto& ls = *stats.listeners[li];
    Labels labels{{"listener", snapshot.listeners[li].config->name}};
    b.codes("switchyard_downstream_requests_total",
            "Requests answered to clients, by listener and status code", labels,
            ls.downstream_requests);
    b.gauge("switchyard_downstream_connections_active", "Open client connections, by listener",
            labels, static_cast<double>(ls.connections_active.load(std::memory_order_relaxed)));
    if (snapshot.listeners[li].config->tls) {
      static constexpr const char* kResults[] = {"success", "failure", "timeout"};
      for (size_t r = 0; r < proxy::ListenerStats::kTlsCount; ++r) {
        b.counter("switchyard_downstream_tls_handshakes_total",
                  "TLS handshakes on client connections, by listener and result",
                  {{"listener", snapshot.listeners[li].config->name}, {"result", kResults[r]}},
                  static_cast<double>(ls.tls_handshakes.value(r)));
      }
    }
  }
  const int64_t now_ns = balancer::steady_now_ns();
  for (size_t ci = 0; ci < snapshot.clusters.size(); ++ci) {
    const auto& cluster = *snapshot.clusters[ci];
    const auto& name = cluster.config().name;
    const Labels cl{{"cluster", name}};
    const auto& proxy_stats = *stats.clusters[ci];
    const auto& lb = cluster.stats();
    const auto& ejections = snapshot.breaker_stats[ci]->counters;
    using PS = proxy::ClusterStats;
    using BS = balancer::ClusterStats;
    using ES = breaker::ClusterStats;
    b.histogram("switchyard_upstream_request_duration_seconds",
                "Time from picking an endpoint to the end of its response", cl,
                proxy_stats.upstream_duration);
    auto counter = [&](const char* n, const char* help, uint64_t value) {
      b.counter(n, help, cl, static_cast<double>(value));
    };
    counter("switchyard_cluster_no_endpoint_total",
            "Requests answered 503 because no endpoint was usable",
            lb.counters.value(BS::kNoEndpoint));
    counter("switchyard_upstream_retries_total", "Upstream tries that were retries",
            proxy_stats.counters.value(PS::kRetries));
    counter("switchyard_upstream_hedges_total",
            "Backup tries sent because the first had not answered within the hedge delay",
            proxy_stats.counters.value(PS::kHedges));
    counter("switchyard_upstream_hedge_wins_total",
            "Requests answered by their backup try (the first try was cancelled)",
            proxy_stats.counters.value(PS::kHedgeWins));
    counter("switchyard_upstream_retry_budget_exhausted_total",
            "Retries not made because the retry budget was spent",
            proxy_stats.counters.value(PS::kRetryBudgetExhausted));
    counter("switchyard_upstream_overflow_total",
            "Requests answered 503 because the cluster was at max_pending_requests",
            lb.counters.value(BS::kOverflow));
    counter("switchyard_outlier_ejections_total", "Endpoints ejected by the circuit breaker",
            ejections.value(ES::kEjections));
    counter("switchyard_outlier_ejections_skipped_total",
            "Ejections not made because of max_ejected_fraction",
            ejections.value(ES::kEjectionsSkipped));
    for (auto [detector, slot] : {std::pair{"success_rate", ES::kEjectionsSuccessRate},
                                  std::pair{"failure_percentage", ES::kEjectionsFailurePercentage},
                                  std::pair{"local_origin", ES::kEjectionsLocalOrigin}}) {
      Labels dl = cl;
      dl.push_back({"detector", detector});
      b.counter("switchyard_outlier_ejections_detected_total",
                "Ejections made by a rate detector or by a run of local-origin failures", dl,
                static_cast<double>(ejections.value(slot)));
    }
    b.histogram("switchyard_hash_ring_rebuild_seconds",
                "Time to build a cluster's hash ring or Maglev table", cl, lb.ring_rebuild);
    for (size_t r = 0; r < 4; ++r) {
      auto result = static_cast<balancer::LoadReportResult>(r);
      b.counter("switchyard_load_reports_total",
                "endpoint-load-metrics headers received, by parse result",
                {{"cluster", name}, {"result", std::string(balancer::to_string(result))}},
                static_cast<double>(lb.counters.value(BS::kLoadReportOk + r)));
    }
    b.counter("switchyard_picks_total",
              "Picks of a locality cluster: in the client's region, or fallback",
              {{"cluster", name}, {"locality", "local"}},
              static_cast<double>(lb.counters.value(BS::kPicksLocal)));
    b.counter("switchyard_picks_total",
              "Picks of a locality cluster: in the client's region, or fallback",
              {{"cluster", name}, {"locality", "fallback"}},
              static_cast<double>(lb.counters.value(BS::kPicksFallback)));
    counter("switchyard_upstream_warm_connections_total",
            "Idle connections opened to the nearest fallback region",
            proxy_stats.counters.value(PS::kWarmConnections));

    const auto& members = cluster.members();
    for (size_t ei = 0; ei < members.size(); ++ei) {
      const auto& ref = members[ei];
      const auto& es = *stats.endpoints[ci][ei];
      const Labels el{{"cluster", name}, {"endpoint", ref.endpoint->address_text}};
      b.codes("switchyard_upstream_requests_total",
              "Responses received from endpoints, by status code", el, es.upstream_requests);
      b.counter("switchyard_upstream_connect_failures_total",
                "Failed connection attempts to endpoints", el,
                static_cast<double>(es.connect_failures.value(0)));
      for (int passed = 1; passed >= 0; --passed) {
        Labels hl = el;
        hl.push_back({"result", passed ? "pass" : "fail"});
        b.counter("switchyard_health_checks_total", "Active health checks, by result", hl,
                  static_cast<double>(ref.health->checks.value(
                      passed ? health::EndpointHealth::kPassed : health::EndpointHealth::kFailed)));
      }
      b.gauge("switchyard_endpoint_healthy", "1 if the endpoint passes health checks", el,
              ref.health->healthy.load(std::memory_order_relaxed) ? 1 : 0);
      b.gauge("switchyard_endpoint_ejected", "1 while the circuit breaker has ejected the endpoint",
              el, ref.breaker->ejected() ? 1 : 0);
      b.gauge("switchyard_endpoint_active_requests", "Requests in flight to the endpoint", el,
              static_cast<double>(ref.load->active_requests.load(std::memory_order_relaxed)));
      b.gauge("switchyard_endpoint_health_score",
              "Health score in (0, 1]: EWMA of request and check results", el,
              ref.breaker->health_score.load(std::memory_order_relaxed));
      auto load = cluster.load_estimate(ref, now_ns);
      b.gauge("switchyard_endpoint_load_score", "Resource-aware load score of the endpoint", el,
              load.score);
      b.gauge("switchyard_endpoint_load_report_age_seconds",
              "Age of the endpoint's last load report; -1 before the first", el, load.report_age_s);
      b.gauge("switchyard_endpoint_latency_ewma_seconds",
              "Peak-EWMA time to the response head, failures as penalties; -1 before the first", el,
              load.latency_ms < 0 ? -1 : load.latency_ms / 1000);
    }
    for (const auto& r : cluster.regions()) {
      const Labels rl{{"cluster", name}, {"region", r.name}};
      b.gauge("switchyard_region_latency_seconds",
              "Mean round-trip EWMA of a region's usable endpoints", rl,
              r.latency_ms < 0 ? -1 : r.latency_ms / 1000);
      b.gauge("switchyard_region_usable_endpoints", "Usable endpoints of a region", rl, r.usable);
      b.gauge("switchyard_region_spill_fraction",
              "Share of a region's clients sent to the fallback", rl, r.spill);
      if (r.predicted_healthy >= 0) {
        b.gauge("switchyard_region_predicted_healthy_fraction",
                "Predicted healthy share of a region's endpoints (locality.predictive)", rl,
                r.predicted_healthy);
      }
    }
    if (cluster.policy().name() == "resource_aware") {
      const auto w = cluster.resource_weights();
      const char* help = "resource_aware's weight of a load signal as scores use it now";
      b.gauge("switchyard_resource_weight", help, {{"cluster", name}, {"signal", "cpu"}}, w.cpu);
      b.gauge("switchyard_resource_weight", help, {{"cluster", name}, {"signal", "memory"}},
              w.memory);
      b.gauge("switchyard_resource_weight", help, {{"cluster", name}, {"signal", "connections"}},
              w.connections);
      if (cluster.learns_weights()) {
        b.gauge("switchyard_resource_weight_fit_r2",
                "R^2 of the latency fit behind the learned weights (weights: adaptive)",
                {{"cluster", name}}, cluster.learned_weights().r2.load(std::memory_order_relaxed));
      }
    }
  }
  for (const auto& d : process.discovery) {
    for (size_t r = 0; r < d.updates.size(); ++r) {
      b.counter("switchyard_discovery_updates_total",
                "Answers of a cluster's discovery source, by result: success (a new set, "
                "applied), no_change, empty and failure (the last good set stays)",
                {{"cluster", d.cluster},
                 {"source", d.source},
                 {"result", discovery::to_string(static_cast<discovery::Result>(r))}},
                static_cast<double>(d.updates[r]));
    }
    b.gauge("switchyard_discovery_endpoints",
            "Endpoints in a discovery source's last good set (0 before its first)",
            {{"cluster", d.cluster}, {"source", d.source}}, static_cast<double>(d.endpoints));
    b.gauge("switchyard_discovery_last_success_timestamp_seconds",
            "Unix time of a discovery source's last good answer (0: none yet)",
            {{"cluster", d.cluster}, {"source", d.source}},
            static_cast<double>(d.last_success_ms) / 1000.0);
  }
  b.counter("switchyard_config_reloads_total", "Configuration reloads, by result",
            {{"result", "success"}}, static_cast<double>(process.reloads_ok));
  b.counter("switchyard_config_reloads_total", "Configuration reloads, by result",
            {{"result", "failure"}}, static_cast<double>(process.reloads_failed));
  b.counter("switchyard_access_log_dropped_total",
            "Access log lines dropped because the log's buffer was full (stdout not read)", {},
            static_cast<double>(process.access_log_dropped));
  b.counter("switchyard_log_dropped_total",
            "Log lines (stderr) left out: the log queue was full (stderr not read), or a "
            "warning's reason was over its rate limit",
            {}, static_cast<double>(process.log_dropped));
  return b.serialize();
}

}  // namespace switchyard::metrics
