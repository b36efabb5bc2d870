#include "switchyard/metrics/metrics.h"

#include <prometheus/text_serializer.h>

#include "switchyard/balancer/load_report.h"

namespace switchyard::metrics {

static_assert(static_cast<size_t>(balancer::LoadReportResult::kDuplicate) + 1 ==
                  std::tuple_size_v<decltype(ClusterMetrics::load_reports)>,
              "one load_reports counter per parse result");

CodeCounters::CodeCounters(prometheus::Family<prometheus::Counter>& family,
                           std::map<std::string, std::string> labels)
    : family_(family), labels_(std::move(labels)) {}

void CodeCounters::increment(unsigned code) {
  if (code >= by_code_.size()) code = 0;
  prometheus::Counter* counter = by_code_[code].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // First sighting of this code: Family::Add is idempotent for equal labels, so two threads
    // racing here get the same counter and store the same pointer.
    auto labels = labels_;
    labels["code"] = code == 0 ? "other" : std::to_string(code);
    counter = &family_.Add(labels);
    by_code_[code].store(counter, std::memory_order_release);
  }
  counter->Increment();
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      downstream_requests_(prometheus::BuildCounter()
                               .Name("switchyard_downstream_requests_total")
                               .Help("Requests answered to clients, by listener and status code")
                               .Register(*registry_)),
      downstream_connections_(prometheus::BuildGauge()
                                  .Name("switchyard_downstream_connections_active")
                                  .Help("Open client connections, by listener")
                                  .Register(*registry_)),
      upstream_requests_(prometheus::BuildCounter()
                             .Name("switchyard_upstream_requests_total")
                             .Help("Responses received from endpoints, by status code")
                             .Register(*registry_)),
      upstream_duration_(prometheus::BuildHistogram()
                             .Name("switchyard_upstream_request_duration_seconds")
                             .Help("Time from picking an endpoint to the end of its response")
                             .Register(*registry_)),
      connect_failures_(prometheus::BuildCounter()
                            .Name("switchyard_upstream_connect_failures_total")
                            .Help("Failed connection attempts to endpoints")
                            .Register(*registry_)),
      no_endpoint_(prometheus::BuildCounter()
                       .Name("switchyard_cluster_no_endpoint_total")
                       .Help("Requests answered 503 because no endpoint was usable")
                       .Register(*registry_)),
      retries_(prometheus::BuildCounter()
                   .Name("switchyard_upstream_retries_total")
                   .Help("Upstream tries that were retries")
                   .Register(*registry_)),
      retry_budget_exhausted_(prometheus::BuildCounter()
                                  .Name("switchyard_upstream_retry_budget_exhausted_total")
                                  .Help("Retries not made because the retry budget was spent")
                                  .Register(*registry_)),
      endpoint_healthy_(prometheus::BuildGauge()
                            .Name("switchyard_endpoint_healthy")
                            .Help("1 if the endpoint passes health checks")
                            .Register(*registry_)),
      endpoint_ejected_(prometheus::BuildGauge()
                            .Name("switchyard_endpoint_ejected")
                            .Help("1 while the circuit breaker has ejected the endpoint")
                            .Register(*registry_)),
      endpoint_active_(prometheus::BuildGauge()
                           .Name("switchyard_endpoint_active_requests")
                           .Help("Requests in flight to the endpoint")
                           .Register(*registry_)),
      overflow_(prometheus::BuildCounter()
                    .Name("switchyard_upstream_overflow_total")
                    .Help("Requests answered 503 because the cluster was at max_pending_requests")
                    .Register(*registry_)),
      ejections_(prometheus::BuildCounter()
                     .Name("switchyard_outlier_ejections_total")
                     .Help("Endpoints ejected by the circuit breaker")
                     .Register(*registry_)),
      ejections_skipped_(prometheus::BuildCounter()
                             .Name("switchyard_outlier_ejections_skipped_total")
                             .Help("Ejections not made because of max_ejected_fraction")
                             .Register(*registry_)),
      endpoint_health_score_(prometheus::BuildGauge()
                                 .Name("switchyard_endpoint_health_score")
                                 .Help("Health score in (0, 1]: EWMA of request and check results")
                                 .Register(*registry_)),
      ring_rebuild_(prometheus::BuildHistogram()
                        .Name("switchyard_hash_ring_rebuild_seconds")
                        .Help("Time to build a cluster's hash ring or Maglev table")
                        .Register(*registry_)),
      endpoint_load_score_(prometheus::BuildGauge()
                               .Name("switchyard_endpoint_load_score")
                               .Help("Resource-aware load score of the endpoint")
                               .Register(*registry_)),
      endpoint_report_age_(prometheus::BuildGauge()
                               .Name("switchyard_endpoint_load_report_age_seconds")
                               .Help("Age of the endpoint's last load report; -1 before the first")
                               .Register(*registry_)),
      load_reports_(prometheus::BuildCounter()
                        .Name("switchyard_load_reports_total")
                        .Help("endpoint-load-metrics headers received, by parse result")
                        .Register(*registry_)),
      picks_(prometheus::BuildCounter()
                 .Name("switchyard_picks_total")
                 .Help("Picks of a locality cluster: in the client's region, or fallback")
                 .Register(*registry_)),
      warm_connections_(prometheus::BuildCounter()
                            .Name("switchyard_upstream_warm_connections_total")
                            .Help("Idle connections opened to the nearest fallback region")
                            .Register(*registry_)),
      region_latency_(prometheus::BuildGauge()
                          .Name("switchyard_region_latency_seconds")
                          .Help("Mean round-trip EWMA of a region's usable endpoints")
                          .Register(*registry_)),
      region_usable_(prometheus::BuildGauge()
                         .Name("switchyard_region_usable_endpoints")
                         .Help("Usable endpoints of a region")
                         .Register(*registry_)),
      region_spill_(prometheus::BuildGauge()
                        .Name("switchyard_region_spill_fraction")
                        .Help("Share of a region's clients sent to the fallback")
                        .Register(*registry_)),
      config_reloads_(prometheus::BuildCounter()
                          .Name("switchyard_config_reloads_total")
                          .Help("Configuration reloads, by result")
                          .Register(*registry_)),
      reload_success_(config_reloads_.Add({{"result", "success"}})),
      reload_failure_(config_reloads_.Add({{"result", "failure"}})) {}

std::shared_ptr<EndpointMetrics> Metrics::endpoint(const std::string& cluster,
                                                   const std::string& address) {
  auto key = cluster + '\0' + address;
  auto& slot = endpoints_[key];
  if (!slot) {
    std::map<std::string, std::string> labels{{"cluster", cluster}, {"endpoint", address}};
    slot = std::shared_ptr<EndpointMetrics>(
        new EndpointMetrics{CodeCounters(upstream_requests_, labels), connect_failures_.Add(labels),
                            endpoint_healthy_.Add(labels), endpoint_ejected_.Add(labels),
                            endpoint_active_.Add(labels), endpoint_health_score_.Add(labels),
                            endpoint_load_score_.Add(labels), endpoint_report_age_.Add(labels)});
    slot->load_report_age.Set(-1);
  }
  return slot;
}

std::shared_ptr<ClusterMetrics> Metrics::cluster(const std::string& name) {
  auto& slot = clusters_[name];
  if (!slot) {
    // Ring and table builds: 0.1 ms .. 1 s.
    static const prometheus::Histogram::BucketBoundaries kRebuildBuckets{
        0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1};
    // Buckets from 0.5 ms to 30 s: loopback sidecars and slow edge backends both resolve.
    static const prometheus::Histogram::BucketBoundaries kBuckets{
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    slot = std::shared_ptr<ClusterMetrics>(
        new ClusterMetrics{upstream_duration_.Add({{"cluster", name}}, kBuckets),
                           no_endpoint_.Add({{"cluster", name}}),
                           retries_.Add({{"cluster", name}}),
                           retry_budget_exhausted_.Add({{"cluster", name}}),
                           overflow_.Add({{"cluster", name}}),
                           ejections_.Add({{"cluster", name}}),
                           ejections_skipped_.Add({{"cluster", name}}),
                           ring_rebuild_.Add({{"cluster", name}}, kRebuildBuckets),
                           {},
                           &picks_.Add({{"cluster", name}, {"locality", "local"}}),
                           &picks_.Add({{"cluster", name}, {"locality", "fallback"}}),
                           &warm_connections_.Add({{"cluster", name}})});
    // One series per parse result, in LoadReportResult order, named as the parser names them.
    for (size_t r = 0; r < slot->load_reports.size(); ++r) {
      auto label = balancer::to_string(static_cast<balancer::LoadReportResult>(r));
      slot->load_reports[r] =
          &load_reports_.Add({{"cluster", name}, {"result", std::string(label)}});
    }
  }
  return slot;
}

Metrics::RegionGauges Metrics::region(const std::string& cluster, const std::string& region) {
  std::map<std::string, std::string> labels{{"cluster", cluster}, {"region", region}};
  return RegionGauges{region_latency_.Add(labels), region_usable_.Add(labels),
                      region_spill_.Add(labels)};
}

std::shared_ptr<ListenerMetrics> Metrics::listener(const std::string& name) {
  auto& slot = listeners_[name];
  if (!slot) {
    slot = std::shared_ptr<ListenerMetrics>(
        new ListenerMetrics{CodeCounters(downstream_requests_, {{"listener", name}}),
                            downstream_connections_.Add({{"listener", name}})});
  }
  return slot;
}

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace switchyard::metrics
