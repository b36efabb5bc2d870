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

// GET /healthz, /readyz, /metrics, /admin/clusters on admin.listen. Runs on the control
// thread's io_context, next to the registry it reads, so it needs no locks.
class AdminServer {
 public:
  AdminServer(boost::asio::io_context& ioc, metrics::Metrics& metrics,
              const registry::Registry& registry, const AdminState& state);
  ~AdminServer();

  // Returns false (and logs) if the address cannot be bound.
  bool listen(const SocketAddress& address);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The /admin/clusters document for a snapshot. Control thread.
std::string clusters_json(const registry::RuntimeSnapshot& snapshot);

}  // namespace switchyard::admin
