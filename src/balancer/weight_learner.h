#pragma once

// resource_aware's adaptive weights (README, "Adaptive resource weights"): which of CPU,
// memory and connections predicts the latency the cluster's endpoints show, learned on the
// control thread from what the endpoints report and what their answers take.
//
// Every tick (100 ms) each endpoint that answered since the last one gives a sample: its CPU
// and memory as the load model reads them, its in-flight requests per unit of capacity (the
// mean at its response heads), and the mean time to those heads. Over the samples of the last
// `window` the learner fits
//     latency = a + b_cpu x cpu + b_memory x memory + b_conn x connections
// by least squares with every b >= 0 (of the seven subsets of signals, the best fit whose
// coefficients are all non-negative: a signal whose latency falls as it rises predicts
// nothing the score could use). A signal that barely moves over the window (standard
// deviation under kMinSpread) is left out: its coefficient is 0, the data say nothing for it.
// The fit's weights are the coefficients' shares (the score then ranks endpoints as the
// predicted latency does), bounded to [min_weight, max_weight] of the static weights' sum.
// The weights move toward
//     static + confidence x (fit - static),  confidence = min(1, R^2 / kTrustedR2)
// with time constant `smoothing`: a fit that explains little of the latency moves them
// little, a burst of odd samples moves the fit a little and the weights less, and with fewer
// than min_samples samples in the window the target is the static weights.

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "switchyard/balancer/cluster_state.h"

namespace switchyard::balancer {

struct LearnerConfig {
  ResourceWeights static_weights;
  int64_t window_ns = 30'000'000'000;
  uint32_t min_samples = 50;
  int64_t smoothing_ns = 5'000'000'000;
  double min_weight = 0.05;
  double max_weight = 0.8;
};

struct WeightSample {
  int64_t at_ns = 0;
  double cpu = 0;
  double memory = 0;
  double connections = 0;
  double latency_ms = 0;
};

struct WeightFit {
  bool ok = false;          // some signal predicts latency (else the static weights)
  ResourceWeights weights;  // summing to the static weights' sum, within the bounds
  double r2 = 0;            // share of the latency's variance the fit explains
};

constexpr double kMinSpread = 0.01;  // a signal's standard deviation below this: left out
constexpr double kTrustedR2 = 0.5;   // a fit explaining half the variance is trusted fully
constexpr size_t kMaxSamples = 8192;

// The fit alone (pure; unit-tested).
WeightFit fit_weights(std::span<const WeightSample> samples, const LearnerConfig& cfg);

// Shares w (summing to 1) moved into [lo, hi] each, still summing to 1 (lo <= 1/3 <= hi).
ResourceWeights bound_shares(ResourceWeights w, double lo, double hi);

class WeightLearner {
 public:
  void add(const WeightSample& s);
  // Drops samples older than the window, fits, and moves the published weights toward the
  // target (at most every 500 ms; the first call publishes the static weights).
  void update(int64_t now_ns, const LearnerConfig& cfg, LearnedWeights& out);
  size_t size() const { return samples_.size(); }

 private:
  std::deque<WeightSample> samples_;
  ResourceWeights current_;
  bool started_ = false;
  int64_t last_ns_ = 0;
};

}  // namespace switchyard::balancer
