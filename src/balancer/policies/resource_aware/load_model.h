#pragma once

// The `resource_aware:` block and the load model it configures. Every cluster has the block
// (absent: defaults) and a LoadModel: the resource_aware policy picks by it, and admin and
// metrics show every endpoint's estimate whatever its cluster's policy.

#include <chrono>
#include <cstdint>

#include "switchyard/balancer/front_door.h"
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
  explicit LoadModel(const Config& cfg);

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

 private:
  double cpu_weight_, memory_weight_, connection_weight_;
  double capacity_;
  double max_age_ns_;
};

}  // namespace switchyard::balancer::resource_aware
