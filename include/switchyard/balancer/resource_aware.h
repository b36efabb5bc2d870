#pragma once

#include <cstdint>
#include <vector>

#include "switchyard/balancer/load_report.h"
#include "switchyard/balancer/strategy.h"

namespace switchyard::balancer {

// Monotonic nanoseconds (steady clock): the time base of load reports.
int64_t steady_now_ns();

// The load model of one `resource_aware` cluster (README, "Resource-aware balancing"):
//   score = (cpu * cpu_weight + memory * memory_weight + conn * connection_weight) / health
//   conn  = active_requests / (connection_capacity * weight), live
//   cpu   = base + influence(age) * (predicted - base), predicted = reported cpu +
//           cpu_per_request * (active now - active at the report)
//   memory = base + influence(age) * (reported - base)
// base is the endpoint's metadata value (0.5 when absent); influence(age) = 1 / (1 +
// (age / max_report_age)^4): a fresh report counts fully, one max_report_age old counts half,
// twice as old 6%: no cliff, and a backend that stops reporting drifts back to its base.
class LoadModel {
 public:
  explicit LoadModel(const config::ResourceAware& cfg);

  struct Estimate {
    double cpu = 0;
    double memory = 0;
    double connections = 0;
    double score = 0;
    double report_age_s = -1;  // < 0: no report yet
  };
  Estimate estimate(const Endpoint& ep, int64_t now_ns) const;
  // Weight in [0, 1] of a report age_ns old.
  double influence(int64_t age_ns) const;
  // Whether an endpoint's report is missing or older than max_report_age / 2.
  bool stale(const registry::EndpointState& s, int64_t now_ns) const;
  int64_t refresh_interval_ns() const { return static_cast<int64_t>(max_age_ns_ / 4); }

 private:
  double cpu_weight_, memory_weight_, connection_weight_;
  double capacity_;
  double max_age_ns_;
};

// Applies a parsed report to an endpoint (any thread; relaxed atomics). A report moves the
// applied CPU and memory by at most kMaxStepPerReport each, so no single report (a GC pause
// reading 0, a glitch reading 1) can swing an endpoint from shunned to favourite: it takes two
// reports to cross the whole range (one second with checks every 500 ms). Two reports whose
// in-flight counts differ by 2 or more teach cpu_per_request (EWMA of the slope).
constexpr double kMaxStepPerReport = 0.4;
void apply_load_report(registry::EndpointState& state, const LoadReport& report, int64_t now_ns);

// An endpoint-load-metrics header as received (on a response or a health check): parsed and,
// when valid, applied now. Returns the parse result, for switchyard_load_reports_total.
LoadReportResult receive_load_report(registry::EndpointState& state, std::string_view header);

// The weight resource_aware gives an endpoint (README, "Resource-aware balancing"):
//   weight x headroom^2,  headroom = (1 - s) / s,  s = score x (1 + (slowdown - 1) x evidence)
// clamped to [kMinShareScore, kMaxShareScore]; slowdown = (response_ms + 2) /
// (best_response_ms + 2) over the endpoints compared (1 while either is unmeasured); evidence =
// (score - lowest_score) / kLatencyEvidence, clamped to [0, 1]: slowness counts only where the
// reported load agrees. Headroom is capacity left per unit used: 4 at s = 0.2, 1 at 0.5, 0.11
// at 0.9. Squared, the shares separate loads that matter (0.63 vs 0.07: 0.1%) and still share
// close ones (0.21 / 0.23 / 0.25: 41 / 33 / 26%). Pure; any thread.
constexpr double kMinShareScore = 0.01;
constexpr double kMaxShareScore = 0.99;
constexpr double kResponseFloorMs = 2.0;   // sub-millisecond differences are noise
constexpr double kLatencyEvidence = 0.05;  // a score this far above the lowest: full weight
double share_weight(double score, double lowest_score, double response_ms, double best_response_ms,
                    uint32_t weight);

// The `resource_aware` strategy: each usable endpoint gets traffic in proportion to its
// share_weight, served by a smooth weighted round robin per worker (every endpoint up to 32;
// beyond, a weighted draw among 16 random samples). Weights are recomputed at every pick from
// live estimates (prediction between reports raises an endpoint's score with every request
// sent to it), so a burst spreads instead of landing on whoever looked idlest at the last
// report. No allocation, no lock.
//
// Reports ride on responses, so an endpoint that gets no traffic would never report again
// (an unknown endpoint sits at its base, 0.5, and stays there). So an endpoint whose report is
// missing or older than max_report_age / 2 gets one request every max_report_age / 4 (one
// worker wins the slot with a CAS): its answer refreshes the report. With health checks on,
// check responses keep reports fresh and this never fires.
class ResourceAware final : public Strategy {
 public:
  ResourceAware(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints);
  const Endpoint* pick(const PickContext& ctx, WorkerLbState& state) const override;
  void prepare(WorkerLbState& state) const override;

  const LoadModel& model() const { return model_; }

 private:
  const std::vector<Endpoint>& endpoints_;
  LoadModel model_;
};

}  // namespace switchyard::balancer
