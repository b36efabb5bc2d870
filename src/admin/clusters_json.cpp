#include <boost/json.hpp>

#include "balancing_json.h"
#include "switchyard/admin/admin_server.h"

namespace switchyard::admin {

namespace {

// How long the current ejection still lasts (0 once it is over or when not ejected). Any
// thread: reads the atomic mirror the circuit breaker keeps.
int64_t ejection_remaining_ms(const breaker::EndpointBreaker& b, int64_t now_ns) {
  if (b.position.load(std::memory_order_relaxed) != breaker::Position::kOpen) return 0;
  const int64_t ends = b.ejection_ends_ns.load(std::memory_order_relaxed);
  return ends <= now_ns ? 0 : (ends - now_ns) / 1'000'000;
}

boost::json::value load_report(const balancer::EndpointLoad& s,
                               const balancer::LoadEstimate& load) {
  if (s.report_at_ns.load(std::memory_order_relaxed) == 0) return nullptr;  // none yet
  const double slope = s.cpu_per_request.load(std::memory_order_relaxed);
  return boost::json::object{
      {"cpu", s.report_cpu.load(std::memory_order_relaxed)},
      {"memory", s.report_memory.load(std::memory_order_relaxed)},
      {"age_ms", static_cast<int64_t>(load.report_age_s * 1000)},
      {"active_requests_at_report", s.report_active.load(std::memory_order_relaxed)},
      {"cpu_per_request", slope < 0 ? boost::json::value(nullptr) : boost::json::value(slope)},
      {"reports", s.reports.load(std::memory_order_relaxed)},
  };
}

}  // namespace

boost::json::value resource_weights_json(const balancer::ClusterBalancer& cluster) {
  const balancer::ResourceWeights w = cluster.resource_weights();
  boost::json::object out{
      {"mode", cluster.learns_weights() ? "adaptive" : "static"},
      {"cpu", w.cpu},
      {"memory", w.memory},
      {"connections", w.connections},
  };
  if (cluster.learns_weights()) {
    const auto& l = cluster.learned_weights();
    out["learned"] = l.cpu.load(std::memory_order_relaxed) >= 0;
    out["r2"] = l.r2.load(std::memory_order_relaxed);
    out["samples"] = l.samples.load(std::memory_order_relaxed);
    out["confidence"] = l.confidence.load(std::memory_order_relaxed);
  }
  return out;
}

boost::json::value region_prediction(const balancer::RegionStatus& r) {
  if (r.predicted_healthy < 0) return nullptr;
  auto ms = [](double v) { return v < 0 ? boost::json::value(nullptr) : boost::json::value(v); };
  return boost::json::object{
      {"predicted_healthy_fraction", r.predicted_healthy},
      {"baseline_ms", ms(r.baseline_ms)},
      {"trend_ms_per_s", r.trend_ms_per_s},
      {"predicted_ms", ms(r.predicted_ms)},
      {"error_rate", r.error_rate},
      {"failing_endpoints", r.failing},
  };
}

// A discovery source as /admin/clusters shows it (timestamps: Unix ms, null for never).
boost::json::object discovery_json(const discovery::SourceStatus& s) {
  auto ms = [](int64_t v) { return v == 0 ? boost::json::value(nullptr) : boost::json::value(v); };
  boost::json::object updates;
  for (size_t r = 0; r < s.updates.size(); ++r) {
    updates[discovery::to_string(static_cast<discovery::Result>(r))] = s.updates[r];
  }
  return boost::json::object{
      {"source", s.source},
      {"target", s.target},
      {"endpoints", s.has_set ? boost::json::value(s.endpoints) : boost::json::value(nullptr)},
      {"last_success_unix_ms", ms(s.last_success_ms)},
      {"last_error_unix_ms", ms(s.last_error_ms)},
      {"last_error",
       s.last_error.empty() ? boost::json::value(nullptr) : boost::json::value(s.last_error)},
      {"updates", std::move(updates)},
  };
}

std::string clusters_json(const control::Snapshot& snapshot,
                          const std::vector<discovery::SourceStatus>& discovery) {
  boost::json::array clusters;
  const int64_t now_ns = balancer::steady_now_ns();
  for (const auto& cluster : snapshot.clusters) {
    boost::json::array endpoints;
    for (const auto& ref : cluster->members()) {
      const auto& ep = *ref.endpoint;
      const auto& b = *ref.breaker;
      const auto& l = *ref.load;
      const auto load = cluster->load_estimate(ref, now_ns);
      endpoints.push_back(boost::json::object{
          {"address", ep.address_text},
          {"region", ep.region},
          {"zone", ep.zone},
          {"weight", ep.weight},
          {"priority", ep.priority},
          {"healthy", ref.health->healthy.load(std::memory_order_relaxed)},
          {"usable", ref.usable()},
          {"ejected", b.ejected()},
          {"breaker", breaker::to_string(b.position.load(std::memory_order_relaxed))},
          {"ejection_remaining_ms", ejection_remaining_ms(b, now_ns)},
          {"ejections", b.ejections_total.load(std::memory_order_relaxed)},
          {"health_score", b.health_score.load(std::memory_order_relaxed)},
          {"active_requests", l.active_requests.load(std::memory_order_relaxed)},
          {"slow_start_factor", l.warm_factor.load(std::memory_order_relaxed)},
          {"successes", b.successes.load(std::memory_order_relaxed)},
          {"failures", b.failures.load(std::memory_order_relaxed)},
          {"consecutive_failures", b.consecutive_failures.load(std::memory_order_relaxed)},
          {"load_report", load_report(l, load)},
          {"load", boost::json::object{{"cpu", load.cpu},
                                       {"memory", load.memory},
                                       {"connections", load.connections},
                                       {"score", load.score}}},
          {"latency",
           boost::json::object{
               {"peak_ewma_ms", load.latency_ms < 0 ? boost::json::value(nullptr)
                                                    : boost::json::value(load.latency_ms)},
               {"cost", load.latency_cost},
               {"fused_cost", load.fused_cost}}},
      });
    }
    boost::json::object entry{
        {"name", cluster->config().name},
        {"strategy", cluster->policy().name()},
        {"endpoints", std::move(endpoints)},
    };
    if (cluster->policy().name() == "resource_aware") {
      entry["resource_weights"] = resource_weights_json(*cluster);
    }
    for (const auto& d : discovery) {
      if (d.cluster == cluster->config().name) entry["discovery"] = discovery_json(d);
    }
    if (cluster->config().locality) {
      boost::json::array regions;
      for (const auto& r : cluster->regions()) {
        regions.push_back(boost::json::object{
            {"region", r.name},
            {"endpoints", r.endpoints},
            {"usable", r.usable},
            {"healthy", r.healthy},
            {"spill", r.spill},
            {"latency_ms", r.latency_ms},
            {"nearest", r.nearest},
            {"spill_cause", r.spill_cause.empty() ? boost::json::value(nullptr)
                                                  : boost::json::value(r.spill_cause)},
            {"prediction", region_prediction(r)},
        });
      }
      entry["regions"] = std::move(regions);
    }
    clusters.push_back(std::move(entry));
  }
  boost::json::object doc{{"version", snapshot.version}, {"clusters", std::move(clusters)}};
  return boost::json::serialize(doc) + "\n";
}

}  // namespace switchyard::admin
