#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "switchyard/config/config.h"
#include "switchyard/metrics/metrics.h"
#include "switchyard/registry/registry.h"

namespace boost::asio {
class io_context;
}

namespace switchyard::admin {

// Process state the admin endpoints report. ready: a config is live and the proxy is not
// draining (/readyz).
struct AdminState {
  std::atomic<bool> ready{false};
};

// GET /healthz, /readyz, /metrics, /admin/clusters on admin.listen. Runs on its own thread
// (named sy-admin) and io_context, off the control thread that runs health checks, the
// circuit breaker and reloads: a crowd of scrapers cannot delay them. At most 64 connections,
// 10 s per request, accept errors back off for 100 ms.
class AdminServer {
 public:
  AdminServer(metrics::Metrics& metrics, const registry::Registry& registry,
              const AdminState& state);
  ~AdminServer();

  // Binds and starts the admin thread; false (and logs) if the address cannot be bound.
  bool listen(const SocketAddress& address);
  // Stops accepting, closes open connections, joins the thread.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The /admin/clusters document for a snapshot. Any thread (reads atomics only).
std::string clusters_json(const registry::RuntimeSnapshot& snapshot);

}  // namespace switchyard::admin
