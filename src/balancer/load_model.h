#pragma once

// The `resource_aware:` block and the load model it configures. Every cluster has the block
// (absent: defaults) and a LoadModel: the resource_aware policy picks by it, and admin and
// metrics show every endpoint's estimate whatever its cluster's policy.

#include <chrono>
#include <cstdint>

#include "switchyard/balancer/cluster_state.h"
#include "switchyard/balancer/policy.h"
#include "switchyard/config/schema.h"

namespace switchyard::balancer::resource_aware {

inline constexpr const char* kBlock = "resource_aware";

struct Config : config::Block {
  double cpu_weight = 0.4;
  double memory_weight = 0.3;
  double connection_weight = 0.3;
  uint32_t connection_capacity = 100;
  Duration max_report_age = std::chrono::seconds(10);
  // Extension: how the pick uses the score. fused (default): power of two choices on
  // peak-EWMA latency x (in flight + 1) x (1 + score): the reports' load part (the contract's
  // formula) with what every response says of latency and errors. seed: the contract's pick
  // alone, shares by headroom through a smooth weighted round robin (README, "Resource-aware
  // balancing").
  enum class Score { kFused, kSeed } score = Score::kFused;
  // Extension: `weights: adaptive` learns the three weights from which signal predicts the
  // latency the endpoints show (README, "Adaptive resource weights"); static (default) keeps
  // the numbers above. `learning:` tunes the fit.
  enum class Weights { kStatic, kAdaptive } weights = Weights::kStatic;
  struct Learning {
    Duration window = std::chrono::seconds(30);    // samples older than this leave the fit
    uint32_t min_samples = 50;                     // fewer: the static weights
    Duration smoothing = std::chrono::seconds(5);  // time constant of the move toward a fit
    double min_weight = 0.05;                      // each weight's bounds, as shares of the
    double max_weight = 0.8;                       //   static weights' sum
  } learning;

  ResourceWeights static_weights() const { return {cpu_weight, memory_weight, connection_weight}; }

  void describe(config::BlockFields& out) const override;
};

// The block's reader, for the schema.
config::ClusterBlockReader block_reader();
// The cluster's block (its defaults when the cluster has none, as in a bare unit test).
const Config& config_of(const config::Cluster& cluster);

// The load model (README, "Resource-aware balancing"):
//   score = (cpu * cpu_weight + memory * memory_weight + conn * connection_weight) / health
//   conn  = active_requests / (connection_capacity * weight), live
//   cpu   = base + influence(age) * (predicted - base), predicted = reported cpu +
//           cpu_per_request * (active now - active at the report)
//   memory = base + influence(age) * (reported - base)
// base is the endpoint's metadata value (0.5 when absent); influence(age) = 1 / (1 +
// (age / max_report_age)^4): a fresh report counts fully, one max_report_age old counts half,
// twice as old 6%: no cliff, and a backend that stops reporting drifts back to its base.
// health is the circuit breaker's health score.
class LoadModel {
 public:
  // learned: the cluster's learned weights, read at each score (nullptr: the static ones).
  explicit LoadModel(const Config& cfg, const LearnedWeights* learned = nullptr);

  // The load part alone.
  LoadEstimate estimate(const EndpointRef& ref, int64_t now_ns) const;
  // Its score only, the same number without the rest (what a pick needs).
  double score(const EndpointRef& ref, int64_t now_ns) const;
  // That and the latency signal's parts (what admin, explain and metrics show).
  LoadEstimate describe(const EndpointRef& ref, int64_t now_ns) const;
  // Weight in [0, 1] of a report age_ns old.
  double influence(int64_t age_ns) const;
  // Whether an endpoint's report is missing or older than max_report_age / 2.
  bool stale(const EndpointLoad& load, int64_t now_ns) const;
  int64_t refresh_interval_ns() const { return static_cast<int64_t>(max_age_ns_ / 4); }
  // The weights a score uses now.
  ResourceWeights weights() const { return learned_ != nullptr ? learned_->get(static_) : static_; }
  // An endpoint's CPU and memory parts (the report, aged and predicted), without weights.
  void signals(const EndpointRef& ref, int64_t now_ns, double* cpu, double* memory) const;

 private:
  ResourceWeights static_;
  const LearnedWeights* learned_;
  double capacity_;
  double max_age_ns_;
};

}  // namespace switchyard::balancer::resource_aware
