#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "switchyard/common/net.h"
#include "switchyard/common/stats.h"
#include "switchyard/config/config.h"
#include "switchyard/tls/context.h"

namespace boost::asio {
class io_context;
}

namespace switchyard::health {

// What active checks know about one endpoint, owned by this module and kept across reloads
// while the endpoint stays configured. `healthy` is read by every pick (relaxed).
struct EndpointHealth {
  std::atomic<bool> healthy{true};
  stats::Counters<2> checks;  // by result: passed, failed
  enum : size_t { kPassed, kFailed };

  // Passive checks (health_check.passive_connect_failures, HAProxy's `observe layer4` with
  // `on-error mark-down`): requests whose connect to the endpoint failed, in a row. A worker
  // that sees the limit reached marks the endpoint unhealthy at once and sets `marked_down`;
  // the probe then needs healthy_threshold passes, counted from its next check, to bring it
  // back. Only on checked endpoints (`checked`): nothing else would bring it back.
  std::atomic<uint32_t> connect_failures_in_a_row{0};
  std::atomic<bool> marked_down{false};
  std::atomic<uint32_t> passive_limit{0};  // 0: off (or not checked); set by the checker
};

// Workers: a request's connect to the endpoint failed (refused, timed out, TLS handshake).
// True when this call marked the endpoint unhealthy (log it once).
bool record_connect_failure(EndpointHealth& health);
// Workers: a request reached the endpoint (connected).
inline void record_connect_success(EndpointHealth& health) {
  if (health.connect_failures_in_a_row.load(std::memory_order_relaxed) != 0)
    health.connect_failures_in_a_row.store(0, std::memory_order_relaxed);
}

// Active HTTP health checks for every cluster that configures `health_check`. One probe per
// endpoint: GET `path` every `interval` (+-10% jitter, so that probes do not synchronise) on a
// kept-alive connection, each check bounded by `timeout`; a status in `expect_status` passes.
// `unhealthy_threshold` failures in a row mark the endpoint unhealthy, `healthy_threshold`
// passes in a row mark it healthy again; each flip is logged once. A new endpoint of a checked
// cluster starts pending (not used) and is checked at once: if that first check passes it is
// healthy at once, otherwise it needs healthy_threshold passes like any unhealthy endpoint.
// A flip is written to the endpoint's EndpointHealth, which every snapshot shares: it never
// rebuilds a table.
//
// Runs on the control thread's io_context; every method must be called on that thread.
class HealthChecker {
 public:
  // Where check results go besides the healthy flag (control thread): the circuit breaker,
  // the health score, the region latency and the load-report path (control::Runtime).
  struct Observer {
    // Every check result, with the round trip of a check that got an answer (else < 0).
    std::function<void(const std::string& key, bool passed, double rtt_ms)> on_result;
    // The endpoint-load-metrics header of a check response, unparsed.
    std::function<void(const std::string& key, std::string_view report)> on_load_report;
  };

  explicit HealthChecker(boost::asio::io_context& ioc, Observer observer = {});
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // The health state of an endpoint (registry::Endpoint::key), created on first sight:
  // pending (not healthy) when its cluster is checked, healthy otherwise.
  std::shared_ptr<EndpointHealth> state(const std::string& key, bool checked);

  struct Target {
    std::string key;
    std::string cluster;
    std::string address_text;
    SocketAddress address;
    std::optional<config::HealthCheck> check;       // none: nobody checks it, it is healthy
    std::shared_ptr<const tls::ClientContext> tls;  // the cluster's upstream TLS, or null
  };
  // The endpoints of the new current configuration: starts probes for new ones, keeps running
  // ones (their counters and connection), stops those of endpoints that left, and drops their
  // states.
  void update(const std::vector<Target>& targets);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace switchyard::health
