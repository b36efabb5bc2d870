#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "switchyard/common/stats.h"
#include "switchyard/config/config.h"

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

// Where an endpoint's breaker stands.
enum class Position : uint8_t {
  kClosed,       // in service
  kOpen,         // ejected until its ejection ends
  kHalfOpen,     // ejection over: the next request is the trial
  kTrial,        // the trial request is in flight; no other request goes there
  kTrialFailed,  // the trial failed; the control thread re-ejects it (longer)
};

// The breaker's state of one endpoint, owned by this module and kept across reloads while the
// endpoint stays configured. Workers write the outcome counters and move the trial (relaxed
// atomics); the control thread owns the rest.
struct alignas(64) EndpointBreaker {
  std::atomic<Position> position{Position::kClosed};
  std::atomic<uint64_t> successes{0};
  std::atomic<uint64_t> failures{0};        // every failure: 5xx and local origin
  std::atomic<uint64_t> local_failures{0};  // of which local origin: connect, reset, timeout
  std::atomic<uint32_t> consecutive_failures{0};
  // split_local_origin: the run of local-origin failures, counted apart.
  std::atomic<uint32_t> consecutive_local_failures{0};
  // Set by the worker that asks the control thread to eject this endpoint; cleared there.
  std::atomic<bool> ejection_requested{false};
  // In (0, 1]: EWMA of request outcomes and check results (control thread writes).
  std::atomic<double> health_score{1.0};
  // Mirrors for readers off the control thread (admin): when the current ejection ends
  // (steady clock ns, 0 = none) and how many there were.
  std::atomic<int64_t> ejection_ends_ns{0};
  std::atomic<uint64_t> ejections_total{0};

  // May a request be sent there (the trial claim aside)?
  bool admits() const {
    auto p = position.load(std::memory_order_relaxed);
    return p == Position::kClosed || p == Position::kHalfOpen;
  }
  bool ejected() const { return position.load(std::memory_order_relaxed) != Position::kClosed; }

  // --- control thread only ---
  uint32_t ejections = 0;  // ejections in a row; the next lasts base_ejection * 2^ejections
  std::chrono::steady_clock::time_point ejected_until{};
  std::chrono::steady_clock::time_point closed_since{};
  uint64_t scored_successes = 0;  // totals already folded into health_score
  uint64_t scored_failures = 0;
  uint32_t checks_passed = 0;  // check results since the last health score update
  uint32_t checks_failed = 0;
  // Totals at the last rate evaluation (success_rate, failure_percentage).
  uint64_t rated_successes = 0;
  uint64_t rated_failures = 0;
  uint64_t rated_local = 0;
};

const char* to_string(Position p);

// Per cluster: ejections made and skipped (max_ejected_fraction), and of the ejections made,
// those the rate detectors decided.
struct ClusterStats {
  enum : size_t {
    kEjections,
    kEjectionsSkipped,
    kEjectionsSuccessRate,
    kEjectionsFailurePercentage,
    kEjectionsLocalOrigin,  // split_local_origin: a run of local-origin failures
    kCount
  };
  stats::Counters<kCount> counters;
};

// --- worker side: any thread, lock-free ----------------------------------------------------
// Each returns true when the control thread has to act: pass the state to
// OutlierDetector::notify.

// A response that is not 5xx. `trial`: this request holds the endpoint's half-open trial.
bool record_success(EndpointBreaker& state, bool trial);
// A 5xx, connect failure, reset or timeout. consecutive_limit 0 = never eject. With
// split_local_origin, a local-origin failure (connect, reset, timeout) runs against
// local_limit on its own count instead of consecutive_failures.
bool record_failure(EndpointBreaker& state, uint32_t consecutive_limit, bool trial,
                    bool local_origin = false, bool split_local_origin = false,
                    uint32_t local_limit = 0);
// A pick landed on a half-open endpoint: true if this request now holds its trial, false if
// another request already does (pick another endpoint).
bool claim_trial(EndpointBreaker& state);
// The trial ended without an outcome (the client left first): the next request is the trial.
void abandon_trial(EndpointBreaker& state);

// --- control thread ------------------------------------------------------------------------
class OutlierDetector {
 public:
  explicit OutlierDetector(boost::asio::io_context& control);
  ~OutlierDetector();
  OutlierDetector(const OutlierDetector&) = delete;
  OutlierDetector& operator=(const OutlierDetector&) = delete;

  // The breaker state of an endpoint (registry::Endpoint::key), created on first sight.
  std::shared_ptr<EndpointBreaker> state(const std::string& key);
  std::shared_ptr<ClusterStats> stats(const std::string& cluster);

  // The clusters of the new current configuration: what the detector watches from now on.
  // States of endpoints that left are dropped (holders keep theirs alive until they finish).
  struct Member {
    std::shared_ptr<EndpointBreaker> state;
    std::string address;
  };
  struct Cluster {
    std::string name;
    config::CircuitBreaker config;
    std::vector<Member> members;
    std::shared_ptr<ClusterStats> stats;
  };
  void update(std::vector<Cluster> clusters);
  // Any thread: asks the control thread to look at the endpoint (see record_*).
  void notify(std::shared_ptr<EndpointBreaker> state);
  // Control thread: an active check result (feeds the health score; may end an ejection).
  void on_check(EndpointBreaker& state, bool passed);
  void stop();

  // Control thread, every 100 ms (control::Runtime's tick): ejections that end, lost
  // notifications; every second, the health scores.
  void tick(std::chrono::steady_clock::time_point now);
  // Control thread. Visible for tests; normally driven by notify() and the tick.
  void evaluate(EndpointBreaker& state, std::chrono::steady_clock::time_point now);
  void update_health_scores();
  // Control thread, every circuit_breaker.interval per cluster (from tick): the rate
  // detectors over the outcomes since the last evaluation. Visible for tests.
  void evaluate_rates(size_t cluster, std::chrono::steady_clock::time_point now);

 private:
  struct Found {
    const Cluster* cluster = nullptr;
    const Member* member = nullptr;
  };
  Found find(const EndpointBreaker& state) const;
  void eject(const Member& m, const Cluster& cluster, std::chrono::steady_clock::time_point now,
             bool after_trial, const std::string& why = {});
  void readmit(const Member& m, const Cluster& cluster, std::chrono::steady_clock::time_point now,
               const char* how);

  struct Impl;
  std::shared_ptr<Impl> impl_;
  std::vector<Cluster> clusters_;
  std::map<const EndpointBreaker*, std::pair<size_t, size_t>> where_;  // cluster, member
  std::map<std::string, std::shared_ptr<EndpointBreaker>> states_;
  std::map<std::string, std::shared_ptr<ClusterStats>> stats_;
  std::chrono::steady_clock::time_point last_score_{};
  std::vector<std::chrono::steady_clock::time_point> last_rates_;  // by cluster
};

// The rate detectors' verdicts on one interval's outcomes (Envoy's success_rate and
// failure_percentage outlier detectors). Pure; any thread.
struct RateSample {
  uint64_t requests = 0;
  uint64_t failures = 0;
};
// Members whose success rate is below mean - stdev_factor x stdev of those with at least
// request_volume requests, when at least minimum_hosts have that many.
std::vector<size_t> success_rate_outliers(const std::vector<RateSample>& samples,
                                          const config::SuccessRateEjection& cfg);
// Members with at least request_volume requests failing at least threshold percent of them,
// when at least minimum_hosts have that many requests.
std::vector<size_t> failure_percentage_outliers(const std::vector<RateSample>& samples,
                                                const config::FailurePercentageEjection& cfg);

// Health score update step: the EWMA of the success fraction of the outcomes seen since the
// last step. Floors at kMinHealthScore so that the score stays in (0, 1].
constexpr double kHealthScoreAlpha = 0.3;
constexpr double kMinHealthScore = 0.01;
double next_health_score(double score, uint64_t ok, uint64_t failed);

// The ejection time after `ejections` earlier ejections in a row.
std::chrono::milliseconds ejection_time(const config::CircuitBreaker& cb, uint32_t ejections);

}  // namespace switchyard::breaker
