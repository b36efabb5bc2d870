#pragma once

#include <memory>
#include <string>
#include <vector>

#include "switchyard/metrics/metrics.h"
#include "switchyard/registry/registry.h"

namespace switchyard::breaker {
class OutlierDetector;
}

namespace switchyard::proxy {

// The data plane: `workers` event-loop threads, each with its own io_context, its own
// SO_REUSEPORT acceptor per listener, its own sessions and upstream pools. Asio stays behind
// this interface.
class ProxyServer {
 public:
  ProxyServer(const config::Config& config, metrics::Metrics& metrics);
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Main thread, before start(): binds every listener on every worker. A listener on port 0
  // gets one ephemeral port shared by all workers, logged. Returns false (and logs) on failure.
  bool bind();
  // Before start(): where workers report upstream outcomes that need the circuit breaker's
  // attention. Without one, outcomes are still counted but nobody is ejected.
  void set_outlier_detector(breaker::OutlierDetector* detector);

  // Control thread. publish() before start() so that workers never run without a snapshot.
  void publish(std::shared_ptr<const registry::RuntimeSnapshot> snapshot);
  void start();
  // Stop accepting; close idle keep-alive connections; finish in-flight requests.
  void drain();
  size_t open_connections() const;
  // Stops every worker and joins its thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchyard::proxy
