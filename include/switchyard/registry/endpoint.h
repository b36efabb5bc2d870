#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "switchyard/common/net.h"
#include "switchyard/metrics/metrics.h"

namespace switchyard::registry {

// Circuit breaker position of one endpoint (breaker/outlier_detector.h has the transitions).
enum class Breaker : uint8_t {
  kClosed,       // in service
  kOpen,         // ejected until its ejection ends
  kHalfOpen,     // ejection over: the next request is the trial
  kTrial,        // the trial request is in flight; no other request goes there
  kTrialFailed,  // the trial failed; the control thread re-ejects it (longer)
};

// Live state of one endpoint, shared by every snapshot that contains it (same cluster, same
// address) and by every worker. Only relaxed atomics: readers need a recent value, not a
// consistent cut, and a health or ejection flip never rebuilds a strategy table.
struct alignas(64) EndpointState {
  // Process-unique, never reused: indexes per-worker connection pools.
  uint32_t id = 0;
  // The snapshot version that first contained this endpoint.
  uint64_t created_in = 0;
  std::atomic<bool> healthy{true};
  std::atomic<Breaker> breaker{Breaker::kClosed};
  std::atomic<int64_t> active_requests{0};
  // Upstream outcomes, written by workers: totals for the health score and the admin page,
  // and the current run of failures for the circuit breaker.
  std::atomic<uint64_t> successes{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<uint32_t> consecutive_failures{0};
  // Set by the worker that asks the control thread to eject this endpoint; cleared there.
  std::atomic<bool> ejection_requested{false};
  // In (0, 1]: EWMA of request outcomes and check results (control thread writes).
  std::atomic<double> health_score{1.0};
  // The applied load report (balancer/resource_aware.h): written by whichever worker or
  // health check received a report, read by every pick. Fields may come from two reports
  // racing; the score tolerates that. report_at_ns == 0: no report yet.
  std::atomic<double> report_cpu{0};
  std::atomic<double> report_memory{0};
  std::atomic<int64_t> report_active{0};    // active_requests when the report arrived
  std::atomic<int64_t> report_at_ns{0};     // steady clock
  std::atomic<double> cpu_per_request{-1};  // learned; < 0 = not yet, use the prior
  std::atomic<uint64_t> reports{0};
  // When a stale endpoint may next get a refresh request (resource_aware; steady clock ns).
  std::atomic<int64_t> refresh_at_ns{0};
  // Round-trip time in ms, EWMA of health checks and response heads (the locality layer's
  // region latency); -1 until measured. Written without a CAS: a lost sample is harmless.
  std::atomic<double> latency_ms{-1};

  void observe_latency(double ms) {
    double l = latency_ms.load(std::memory_order_relaxed);
    latency_ms.store(l < 0 ? ms : l + 0.2 * (ms - l), std::memory_order_relaxed);
  }
  // Time to the response head of real requests only (health checks excluded: they do not
  // queue behind the endpoint's work), EWMA; -1 until measured. resource_aware's weights use
  // it. Written without a CAS, like latency_ms.
  std::atomic<double> response_ms{-1};
  void observe_response(double ms) {
    double l = response_ms.load(std::memory_order_relaxed);
    response_ms.store(l < 0 ? ms : l + 0.1 * (ms - l), std::memory_order_relaxed);
  }
  std::shared_ptr<metrics::EndpointMetrics> metrics;

  // --- control thread only ---
  uint32_t ejections = 0;  // ejections in a row; the next lasts base_ejection * 2^ejections
  std::chrono::steady_clock::time_point ejected_until{};
  std::chrono::steady_clock::time_point closed_since{};
  // Mirrors for readers on other threads (the admin thread): when the current ejection ends
  // (steady clock ns, 0 = none) and how many there were.
  std::atomic<int64_t> ejection_ends_ns{0};
  std::atomic<uint64_t> ejections_total{0};
  uint64_t scored_successes = 0;  // totals already folded into health_score
  uint64_t scored_failures = 0;
  uint32_t checks_passed = 0;  // check results since the last health score update
  uint32_t checks_failed = 0;

  bool usable() const {
    if (!healthy.load(std::memory_order_relaxed)) return false;
    auto b = breaker.load(std::memory_order_relaxed);
    return b == Breaker::kClosed || b == Breaker::kHalfOpen;
  }
  bool ejected() const { return breaker.load(std::memory_order_relaxed) != Breaker::kClosed; }
};

// One endpoint as a snapshot sees it: immutable identity and weight plus its live state.
struct Endpoint {
  uint32_t index = 0;  // position in the snapshot's endpoint list
  std::string address_text;
  SocketAddress address;
  std::string region;
  std::string zone;
  uint32_t weight = 1;
  // Static load (config metadata cpu_usage / memory_usage), 0.5 when absent: the starting
  // values before any report, and what an old report fades back to.
  double base_cpu = 0.5;
  double base_memory = 0.5;
  std::shared_ptr<EndpointState> state;
};

}  // namespace switchyard::registry
