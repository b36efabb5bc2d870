#include <boost/json.hpp>

#include "switchyard/admin/admin_server.h"
#include "switchyard/balancer/locality.h"
#include "switchyard/balancer/resource_aware.h"

namespace switchyard::admin {

namespace {

const char* breaker_name(registry::Breaker b) {
  switch (b) {
    case registry::Breaker::kClosed:
      return "closed";
    case registry::Breaker::kOpen:
      return "open";
    case registry::Breaker::kHalfOpen:
      return "half_open";
    case registry::Breaker::kTrial:
      return "trial";
    case registry::Breaker::kTrialFailed:
      return "trial_failed";
  }
  return "unknown";
}

// How long the current ejection still lasts (0 once it is over or when not ejected). Any
// thread: reads the atomic mirror the circuit breaker keeps.
int64_t ejection_remaining_ms(const registry::EndpointState& s, int64_t now_ns) {
  if (s.breaker.load(std::memory_order_relaxed) != registry::Breaker::kOpen) return 0;
  const int64_t ends = s.ejection_ends_ns.load(std::memory_order_relaxed);
  return ends <= now_ns ? 0 : (ends - now_ns) / 1'000'000;
}

}  // namespace

std::string clusters_json(const registry::RuntimeSnapshot& snapshot) {
  boost::json::array clusters;
  const int64_t now_ns = balancer::steady_now_ns();
  for (const auto& cluster : snapshot.clusters) {
    boost::json::array endpoints;
    balancer::LoadModel model(cluster->config->resource_aware);
    for (const auto& ep : cluster->endpoints) {
      const auto& s = *ep.state;
      const auto load = model.estimate(ep, now_ns);
      boost::json::value report;  // null before the first report
      if (s.report_at_ns.load(std::memory_order_relaxed) != 0) {
        double slope = s.cpu_per_request.load(std::memory_order_relaxed);
        report = boost::json::object{
            {"cpu", s.report_cpu.load(std::memory_order_relaxed)},
            {"memory", s.report_memory.load(std::memory_order_relaxed)},
            {"age_ms", static_cast<int64_t>(load.report_age_s * 1000)},
            {"active_requests_at_report", s.report_active.load(std::memory_order_relaxed)},
            {"cpu_per_request",
             slope < 0 ? boost::json::value(nullptr) : boost::json::value(slope)},
            {"reports", s.reports.load(std::memory_order_relaxed)},
        };
      }
      endpoints.push_back(boost::json::object{
          {"address", ep.address_text},
          {"region", ep.region},
          {"zone", ep.zone},
          {"weight", ep.weight},
          {"healthy", s.healthy.load(std::memory_order_relaxed)},
          {"usable", s.usable()},
          {"ejected", s.ejected()},
          {"breaker", breaker_name(s.breaker.load(std::memory_order_relaxed))},
          {"ejection_remaining_ms", ejection_remaining_ms(s, now_ns)},
          {"ejections", s.ejections_total.load(std::memory_order_relaxed)},
          {"health_score", s.health_score.load(std::memory_order_relaxed)},
          {"active_requests", s.active_requests.load(std::memory_order_relaxed)},
          {"successes", s.successes.load(std::memory_order_relaxed)},
          {"failures", s.failures.load(std::memory_order_relaxed)},
          {"consecutive_failures", s.consecutive_failures.load(std::memory_order_relaxed)},
          {"load_report", std::move(report)},
          {"load", boost::json::object{{"cpu", load.cpu},
                                       {"memory", load.memory},
                                       {"connections", load.connections},
                                       {"score", load.score}}},
      });
    }
    boost::json::object entry{
        {"name", cluster->config->name},
        {"strategy", config::to_string(cluster->config->strategy)},
        {"endpoints", std::move(endpoints)},
    };
    if (const auto* locality = dynamic_cast<const balancer::Locality*>(cluster->strategy.get())) {
      boost::json::array regions;
      for (const auto& r : locality->regions()) {
        regions.push_back(boost::json::object{
            {"region", r.name},
            {"endpoints", r.endpoints},
            {"usable", r.usable},
            {"healthy", r.healthy},
            {"spill", r.spill},
            {"latency_ms", r.latency_ms},
            {"nearest", r.nearest},
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
