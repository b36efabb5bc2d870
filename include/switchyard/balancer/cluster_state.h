#pragma once

// What a cluster keeps across its snapshots (control::Runtime holds one per cluster name, so
// a reload does not reset it): live counters the front door keeps and the resource weights
// resource_aware learns (`weights: adaptive`).

#include <atomic>
#include <cstdint>
#include <memory>

namespace switchyard::balancer {

// resource_aware's three weights: score = cpu x cpu + memory x memory + connections x conn.
struct ResourceWeights {
  double cpu = 0.4;
  double memory = 0.3;
  double connections = 0.3;
};

// The weights a cluster with `weights: adaptive` has learned (README, "Adaptive resource
// weights"), published by the control thread and read by every score (relaxed atomics: a
// score may mix two publications, which a weight tolerates).
struct LearnedWeights {
  std::atomic<double> cpu{-1};  // < 0: nothing learned yet (the static weights apply)
  std::atomic<double> memory{-1};
  std::atomic<double> connections{-1};
  // The fit behind them: its R^2 on the window, the samples in the window, the share of the
  // way from the static weights to the fit that the confidence allows.
  std::atomic<double> r2{0};
  std::atomic<uint32_t> samples{0};
  std::atomic<double> confidence{0};

  ResourceWeights get(const ResourceWeights& fallback) const {
    const double c = cpu.load(std::memory_order_relaxed);
    if (c < 0) return fallback;
    return {c, memory.load(std::memory_order_relaxed), connections.load(std::memory_order_relaxed)};
  }
};

// The resource-aware load estimate of an endpoint (every cluster has one, for admin and
// metrics; README, "Resource-aware balancing").
struct LoadEstimate {
  double cpu = 0;
  double memory = 0;
  double connections = 0;
  double score = 0;
  double report_age_s = -1;  // < 0: no report yet
  // The latency signal (README, "Latency-aware balancing"): the peak-EWMA estimate (ms; -1
  // before the first response), peak_ewma's cost (estimate x (in flight + 1) / weight) and
  // resource_aware's fused cost (that x (1 + score)).
  double latency_ms = -1;
  double latency_cost = 0;
  double fused_cost = 0;
};

class WeightLearner;  // src/balancer/weight_learner.h

struct ClusterState {
  ClusterState();
  ~ClusterState();
  ClusterState(const ClusterState&) = delete;
  ClusterState& operator=(const ClusterState&) = delete;

  std::atomic<int64_t> active_tries{0};       // upstream tries in flight
  std::atomic<uint32_t> usable_endpoints{0};  // refreshed by tick()
  // Refreshed by tick(): below panic_threshold (every endpoint acceptable), and whether some
  // endpoint is warming up (slow start).
  std::atomic<bool> panic{false};
  std::atomic<bool> warming{false};
  LearnedWeights weights;

  // --- control thread only -----------------------------------------------------------------
  std::unique_ptr<WeightLearner> learner;  // made on the first tick of a learning cluster
};

}  // namespace switchyard::balancer
