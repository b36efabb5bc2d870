#pragma once

#include <chrono>
#include <memory>
#include <unordered_map>

#include "switchyard/registry/registry.h"

namespace boost::asio {
class io_context;
}

// Passive outlier detection: a circuit breaker per endpoint, driven by the outcomes of real
// requests (and by active checks where a cluster has them).
//
//   closed --consecutive_failures in a row--> open (ejected for base_ejection * 2^n, n = the
//   ejections before it, at most max_ejection) --time, or a passing check--> half-open: the
//   next request is the only one sent there (trial) --success--> closed
//                                               --failure--> open again, twice as long.
//
// A half-open endpoint that gets no request is decided by its next check instead. At most
// max_ejected_fraction of a cluster's endpoints (rounded down) are out at once; a failing
// endpoint over that cap stays in and is counted in switchyard_outlier_ejections_skipped_total.
// After max_ejection in service the doubling starts again from base_ejection.
namespace switchyard::breaker {

// --- worker side: any thread, lock-free ----------------------------------------------------
// Each returns true when the control thread has to act: pass the state to
// OutlierDetector::notify.

// A response that is not 5xx. `trial`: this request holds the endpoint's half-open trial.
bool record_success(registry::EndpointState& state, bool trial);
// A 5xx, connect failure, reset or timeout. consecutive_limit 0 = never eject.
bool record_failure(registry::EndpointState& state, uint32_t consecutive_limit, bool trial);
// A pick landed on a half-open endpoint: true if this request now holds its trial, false if
// another request already does (pick another endpoint).
bool claim_trial(registry::EndpointState& state);
// The trial ended without an outcome (the client left first): the next request is the trial.
void abandon_trial(registry::EndpointState& state);

// --- control thread ------------------------------------------------------------------------
class OutlierDetector {
 public:
  explicit OutlierDetector(boost::asio::io_context& control);
  ~OutlierDetector();
  OutlierDetector(const OutlierDetector&) = delete;
  OutlierDetector& operator=(const OutlierDetector&) = delete;

  // Watches the endpoints of the new current snapshot; starts the periodic tick on first use.
  void update(std::shared_ptr<const registry::RuntimeSnapshot> snapshot);
  // Any thread: asks the control thread to look at the endpoint (see record_*).
  void notify(std::shared_ptr<registry::EndpointState> state);
  // Control thread: an active check result (feeds the health score; may end an ejection).
  void on_check(registry::EndpointState& state, bool passed);
  void stop();

  // Control thread. Visible for tests; normally driven by notify() and the tick.
  void evaluate(registry::EndpointState& state, std::chrono::steady_clock::time_point now);
  void tick(std::chrono::steady_clock::time_point now);
  void update_health_scores();

 private:
  struct Member {
    const registry::ClusterSnapshot* cluster;
  };
  void eject(const registry::Endpoint& ep, const registry::ClusterSnapshot& cluster,
             std::chrono::steady_clock::time_point now, bool after_trial);
  void readmit(const registry::Endpoint& ep, const registry::ClusterSnapshot& cluster,
               std::chrono::steady_clock::time_point now, const char* how);
  const registry::Endpoint* find(const registry::EndpointState& state,
                                 const registry::ClusterSnapshot** cluster) const;
  void schedule();

  struct Impl;
  std::shared_ptr<Impl> impl_;
  std::shared_ptr<const registry::RuntimeSnapshot> snapshot_;
  std::unordered_map<const registry::EndpointState*, Member> members_;
  std::chrono::steady_clock::time_point last_score_{};
};

// Health score update step: the EWMA of the success fraction of the outcomes seen since the
// last step. Floors at kMinHealthScore so that the score stays in (0, 1].
constexpr double kHealthScoreAlpha = 0.3;
constexpr double kMinHealthScore = 0.01;
double next_health_score(double score, uint64_t ok, uint64_t failed);

// The ejection time after `ejections` earlier ejections in a row.
std::chrono::milliseconds ejection_time(const config::CircuitBreaker& cb, uint32_t ejections);

}  // namespace switchyard::breaker
