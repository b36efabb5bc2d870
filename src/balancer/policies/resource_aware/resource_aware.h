#pragma once

// `strategy: resource_aware` (README, "Resource-aware balancing"): every usable endpoint gets
// traffic in proportion to share_weight of its load score, through a smooth weighted round robin
// per worker.

#include <memory>

#include "../../load_model.h"
#include "../common/costs.h"
#include "../common/weighted_draw.h"
#include "switchyard/balancer/policy.h"

namespace switchyard::balancer::resource_aware {

// The weight an endpoint gets:
//   weight x headroom^2,  headroom = (1 - s) / s,  s = score x (1 + (slowdown - 1) x evidence)
// clamped to [kMinShareScore, kMaxShareScore]; slowdown = (response_ms + 2) /
// (best_response_ms + 2) over the endpoints compared (1 while either is unmeasured); evidence =
// (score - lowest_score) / kLatencyEvidence, clamped to [0, 1]: slowness counts only where the
// reported load agrees. Headroom is capacity left per unit used: 4 at s = 0.2, 1 at 0.5, 0.11
// at 0.9. Squared, the shares separate loads that matter (0.63 vs 0.07: 0.1%) and still share
// close ones (0.21 / 0.23 / 0.25: 41 / 33 / 26%). Pure; any thread.
constexpr double kResponseFloorMs = 2.0;   // sub-millisecond differences are noise
constexpr double kLatencyEvidence = 0.05;  // a score this far above the lowest: full weight
double share_weight(double score, double lowest_score, double response_ms, double best_response_ms,
                    double weight);

// The table: every member up to 32 is scored at each pick (beyond, 16 random samples and a
// weighted draw among them). Reports ride on responses, so an endpoint that gets no traffic
// would never report again: one whose report is missing or older than max_report_age / 2 gets
// one request every max_report_age / 4 (one worker wins the slot with a CAS), and its answer
// refreshes the report. With health checks on, check responses keep reports fresh.
//
// With `score: fused` (the default) the pick is instead two draws by configured weight (three in
// clusters of three or more) and comparisons (pick_fused in resource_aware.cpp; README,
// "Latency-aware balancing"): the latency signal (latency_cost: peak-EWMA latency with failures
// as penalties, times requests in flight + 1) decides, and the reports' load counts in it where it
// agrees with the latency; two idle, equally quick endpoints share by the seed's weights. Reports
// alone cannot see an endpoint that is slower per request (three times slower with the same busy
// fraction of its slots): least-connections balancing sends it a third of a fast one's rate, and
// its latency sets the tail. Latency alone cannot see an endpoint whose CPU is taken by a neighbour
// before its queue grows. Refresh requests as above.
class Table final : public PolicyTable {
 public:
  Table(const config::Cluster& cluster, const Members& members, const ClusterState& state);
  void prepare(WorkerLbState& lb) const override;
  uint32_t pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const override;
  const LoadModel& model() const { return model_; }

 private:
  uint32_t pick_seed(const Filter& filter, WorkerLbState& lb, int64_t now) const;
  uint32_t pick_fused(const Filter& filter, WorkerLbState& lb, int64_t now) const;
  // The fused comparison of two drawn members: the winner; *share set when both are idle and
  // alike (the seed's shares decide: between the two in clusters over kMaxScan members).
  uint32_t duel(uint32_t a, uint32_t b, WorkerLbState& lb, int64_t now, bool* share) const;
  // A stale endpoint whose refresh slot this pick wins (CAS), or kNone.
  bool claim_refresh(uint32_t i, int64_t now) const;

  const Members& members_;
  LoadModel model_;
  Config::Score mode_;
  WeightedDraw draw_;
};

// What decides between two drawn endpoints: kShare (both idle, latencies alike or unmeasured:
// the seed's share weights), kLoadCounts (latencies alike: cost x load factor), kLatency
// (latencies differ: cost, and the load factor only if the slower is also the more loaded).
// Where the load counts, each cost is divided by the seed's share_weight of its score (with the
// seed's slowdown and evidence), the same for both sides of the comparison.
// Latencies are alike within kAlikeLatency of each other (plus kResponseFloorMs).
enum class Verdict { kShare, kLoadCounts, kLatency };
constexpr double kAlikeLatency = 1.25;
// Scores this far apart: the reports count whatever the latency says.
constexpr double kBelievedGap = 0.2;
// Both idle with scores kBelievedGap or more apart: kShare whatever the latencies.
Verdict fused_verdict(double latency_a, double latency_b, int64_t active_a, int64_t active_b,
                      double score_gap = 0);
// load_factor and fused_cost: policies/common/costs.h.

std::unique_ptr<Policy> make();

}  // namespace switchyard::balancer::resource_aware
