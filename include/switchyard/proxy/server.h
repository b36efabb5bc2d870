#pragma once

#include <memory>
#include <string>
#include <vector>

#include "switchyard/config/config.h"
#include "switchyard/proxy/stats.h"

namespace switchyard::control {
struct Snapshot;
}

namespace switchyard::proxy {

// The data plane: `workers` event-loop threads, each with its own io_context, its own
// SO_REUSEPORT acceptor per listener, its own sessions and upstream pools. Asio stays behind
// this interface.
class ProxyServer {
 public:
  explicit ProxyServer(const config::Config& config);
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Main thread, before start(): binds every listener on every worker. A listener on port 0
  // gets one ephemeral port shared by all workers, logged. Returns false (and logs) on failure.
  bool bind();
  // Control thread. publish() before start() so that workers never run without a snapshot:
  // the proxy's statistics for it are built here, then both go to every worker.
  void publish(std::shared_ptr<const control::Snapshot> snapshot);
  void start();
  // Stop accepting; close idle keep-alive connections; finish in-flight requests.
  void drain();
  size_t open_connections() const;
  // Stops every worker and joins its thread.
  void stop();

  // The proxy's statistics (per listener, cluster and endpoint of the current snapshot); any
  // thread.
  const StatsRegistry& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchyard::proxy
