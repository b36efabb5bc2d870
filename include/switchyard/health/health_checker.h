#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "switchyard/registry/registry.h"

namespace boost::asio {
class io_context;
}

namespace switchyard::health {

// Active HTTP health checks for every cluster that configures `health_check`. One probe per
// endpoint: GET `path` every `interval` (+-10% jitter, so that probes do not synchronise) on a
// kept-alive connection, each check bounded by `timeout`; a status in `expect_status` passes.
// `unhealthy_threshold` failures in a row mark the endpoint unhealthy, `healthy_threshold`
// passes in a row mark it healthy again; each flip is logged once. A new endpoint of a checked
// cluster starts pending (not used) and is checked at once: if that first check passes it is
// healthy at once, otherwise it needs healthy_threshold passes like any unhealthy endpoint.
// The result is written to the endpoint's EndpointState, which every snapshot shares: a flip
// never rebuilds a strategy table.
//
// Runs on the control thread's io_context; every method must be called on that thread.
class HealthChecker {
 public:
  // Where check results go besides the endpoint's healthy flag (control thread, may be empty).
  struct Observer {
    // Every check result: the circuit breaker and the health score use it.
    std::function<void(registry::EndpointState&, bool passed)> on_result;
    // The endpoint-load-metrics header of a check response, unparsed: the load-report path.
    std::function<void(const std::string& cluster, registry::EndpointState&,
                       std::string_view report)>
        on_load_report;
  };

  explicit HealthChecker(boost::asio::io_context& ioc, Observer observer = {});
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Probes the endpoints of `snapshot`: starts probes for new endpoints, keeps running ones
  // (their counters and connection) and stops probes of endpoints that left. Endpoints of
  // clusters without health_check are marked healthy.
  void update(const registry::RuntimeSnapshot& snapshot);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace switchyard::health
