#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

// The outcome of a reload asked for by POST /admin/reload.
struct ReloadOutcome {
  bool ok = false;
  uint64_t version = 0;             // the snapshot serving after it
  std::vector<std::string> errors;  // FILE:LINE:COL: key: what is wrong
};
// Runs a reload where reloads run (the control thread) and calls done with its outcome, from
// any thread.
using ReloadHook = std::function<void(std::function<void(ReloadOutcome)> done)>;

// GET /healthz, /readyz, /metrics, /admin/clusters, /admin/config, /admin/explain, the status
// page at /, and POST /admin/reload on admin.listen. Runs on its own thread
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

  // Before listen(): what POST /admin/reload runs (without one it answers 503).
  void on_reload(ReloadHook hook);
  // Binds admin.listen (and admin.probe_listen, when given: /healthz, /readyz and /metrics
  // only) and starts the admin thread; false (and logs) if an address cannot be bound.
  bool listen(const SocketAddress& address,
              const std::optional<SocketAddress>& probe_address = std::nullopt);
  // Stops accepting, closes open connections, joins the thread.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Whether a state-changing admin call may go ahead: nullopt, or the status (401, 403) and the
// reason to answer. authorization: the request's Authorization field; token: admin.token_file's
// token ("" when none is configured); peer_is_loopback: the caller's address is 127/8 or ::1.
std::optional<std::pair<unsigned, std::string>> authorize_change(std::string_view authorization,
                                                                 std::string_view token,
                                                                 bool peer_is_loopback);

// The /admin/clusters document for a snapshot. Any thread (reads atomics only).
// discovery: each discovery source's state (Runtime::discovery_status()), shown with its
// cluster.
std::string clusters_json(const control::Snapshot& snapshot,
                          const std::vector<discovery::SourceStatus>& discovery = {});
// The /admin/config document: the snapshot's configuration, defaults filled in, secrets
// redacted.
std::string config_json(const control::Snapshot& snapshot);
// The /admin/explain document for a query string ("listener=L&host=H&path=P&header=K:V&
// client=IP"); *status is set to 400 for a malformed query.
std::string explain_json(const control::Snapshot& snapshot, std::string_view query,
                         unsigned* status);
// The status page (one self-contained HTML file, src/admin/status_page.html).
std::string_view status_page();

}  // namespace switchyard::admin
