#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "switchyard/common/net.h"
#include "switchyard/control/runtime.h"
#include "switchyard/proxy/stats.h"

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
  // stats: the proxy's statistics with their snapshot (what /metrics and /admin/clusters
  // describe); runtime: the process counters (reloads).
  AdminServer(const proxy::StatsRegistry& stats, const control::Runtime& runtime,
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
std::string clusters_json(const control::Snapshot& snapshot);

}  // namespace switchyard::admin
