#include <boost/json.hpp>

#include "switchyard/admin/admin_server.h"

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

// How long the current ejection still lasts (0 once it is over or when not ejected). Read on
// the control thread, which owns ejected_until.
int64_t ejection_remaining_ms(const registry::EndpointState& s,
                              std::chrono::steady_clock::time_point now) {
  if (s.breaker.load(std::memory_order_relaxed) != registry::Breaker::kOpen) return 0;
  if (s.ejected_until <= now) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(s.ejected_until - now).count();
}

}  // namespace

std::string clusters_json(const registry::RuntimeSnapshot& snapshot) {
  auto now = std::chrono::steady_clock::now();
  boost::json::array clusters;
  for (const auto& cluster : snapshot.clusters) {
    boost::json::array endpoints;
    for (const auto& ep : cluster->endpoints) {
      const auto& s = *ep.state;
      endpoints.push_back(boost::json::object{
          {"address", ep.address_text},
          {"region", ep.region},
          {"zone", ep.zone},
          {"weight", ep.weight},
          {"healthy", s.healthy.load(std::memory_order_relaxed)},
          {"usable", s.usable()},
          {"ejected", s.ejected()},
          {"breaker", breaker_name(s.breaker.load(std::memory_order_relaxed))},
          {"ejection_remaining_ms", ejection_remaining_ms(s, now)},
          {"ejections", s.ejections_total},
          {"health_score", s.health_score.load(std::memory_order_relaxed)},
          {"active_requests", s.active_requests.load(std::memory_order_relaxed)},
          {"successes", s.successes.load(std::memory_order_relaxed)},
          {"failures", s.failures.load(std::memory_order_relaxed)},
          {"consecutive_failures", s.consecutive_failures.load(std::memory_order_relaxed)},
      });
    }
    clusters.push_back(boost::json::object{
        {"name", cluster->config->name},
        {"strategy", config::to_string(cluster->config->strategy)},
        {"endpoints", std::move(endpoints)},
    });
  }
  boost::json::object doc{{"version", snapshot.version}, {"clusters", std::move(clusters)}};
  return boost::json::serialize(doc) + "\n";
}

}  // namespace switchyard::admin
