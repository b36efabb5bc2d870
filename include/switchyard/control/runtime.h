#pragma once

// The control side's home: builds each configuration version into a snapshot ready to serve
// (the registry's identities, every module's live state per endpoint, a balancer per cluster,
// a router per listener), keeps the modules that own live state in step with it (health
// checks, the circuit breaker, the balancer's load state), routes health-check results to the
// breaker and the load model, and runs the periodic control work (the 100 ms tick). Control
// thread, except current().

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "switchyard/balancer/front_door.h"
#include "switchyard/breaker/outlier_detector.h"
#include "switchyard/common/stats.h"
#include "switchyard/discovery/discovery.h"
#include "switchyard/health/health_checker.h"
#include "switchyard/registry/registry.h"
#include "switchyard/routing/router.h"
#include "switchyard/tls/context.h"

namespace boost::asio {
class io_context;
}

namespace switchyard::control {

struct ListenerRuntime {
  const config::Listener* config = nullptr;
  const registry::ListenerInfo* registry = nullptr;  // asserted headers
  routing::Router router;
};

// One configuration version ready to serve. Immutable; posted to every worker, read without
// locks.
struct Snapshot {
  uint64_t version = 0;
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const registry::Membership> registry;
  std::vector<std::unique_ptr<balancer::ClusterBalancer>> clusters;         // by cluster index
  std::vector<std::shared_ptr<const breaker::ClusterStats>> breaker_stats;  // by cluster index
  std::vector<ListenerRuntime> listeners;                                   // by listener index
  // TLS contexts (null: plaintext), built with the snapshot: a reload that changes a
  // certificate gives new connections the new one; open ones keep theirs.
  std::vector<std::shared_ptr<const tls::ServerContext>> listener_tls;  // by listener index
  std::vector<std::shared_ptr<const tls::ClientContext>> cluster_tls;   // by cluster index
};

class Runtime {
 public:
  explicit Runtime(boost::asio::io_context& control);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Builds the snapshot of cfg (the file's configuration; each discovered cluster gets its
  // source's last good set added, see discovery.h) and makes it current. An endpoint that
  // stays (same cluster, same address) keeps its state in every module: health, breaker
  // position and ejection, health score, in-flight count, load report, pooled connections.
  // nullptr (and *error) when a TLS context cannot be built (a certificate file changed after
  // it was checked, say): then nothing changes.
  std::shared_ptr<const Snapshot> apply(std::shared_ptr<const config::Config> cfg,
                                        std::string* error = nullptr);
  // Where a snapshot rebuilt for a discovery change goes (the workers).
  void on_rebuild(std::function<void(std::shared_ptr<const Snapshot>)> publish) {
    publish_ = std::move(publish);
  }
  // Any thread: each discovery source's state.
  std::vector<discovery::SourceStatus> discovery_status() const { return discovery_.status(); }
  // Any thread: the current snapshot.
  std::shared_ptr<const Snapshot> current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return current_;
  }

  // Starts the 100 ms tick (after the first apply()).
  void start();
  void stop();

  breaker::OutlierDetector& outliers() { return outliers_; }
  // Process counters: config reloads by result (any thread).
  void count_reload(bool success) { reloads_.add(success ? 0 : 1); }
  uint64_t reloads(bool success) const { return reloads_.value(success ? 0 : 1); }

  // Control thread, every 100 ms (public for tests): the breaker's timing, then every
  // balancer's usable counts and locality view.
  void tick();

 private:
  std::shared_ptr<const Snapshot> build(std::shared_ptr<const config::Config> cfg,
                                        std::string* error);
  // A discovery source's set changed: the current base configuration, composed again.
  void rediscover();
  void schedule();
  void on_check_result(const std::string& key, bool passed, double rtt_ms);
  void on_check_report(const std::string& key, std::string_view header);

  struct Impl;
  std::shared_ptr<Impl> impl_;
  registry::Registry registry_;
  breaker::OutlierDetector outliers_;
  health::HealthChecker health_;
  std::map<std::string, std::shared_ptr<balancer::EndpointLoad>> loads_;  // by endpoint key
  std::map<std::string, std::shared_ptr<balancer::ClusterState>> cluster_states_;
  std::map<std::string, std::shared_ptr<balancer::ClusterStats>> cluster_stats_;
  std::map<std::string, std::shared_ptr<breaker::EndpointBreaker>> breakers_;  // current
  // Each cluster's upstream TLS context and what it was built from, kept while unchanged.
  struct ClientTls {
    std::string fingerprint;
    std::shared_ptr<const tls::ClientContext> context;
  };
  std::map<std::string, ClientTls> client_tls_;  // by cluster name
  discovery::Manager discovery_;
  std::shared_ptr<const config::Config> base_;  // the last applied file configuration
  std::function<void(std::shared_ptr<const Snapshot>)> publish_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> current_;
  stats::Counters<2> reloads_;
};

}  // namespace switchyard::control
