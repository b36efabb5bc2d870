#include "resource_aware.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "../peak_ewma/peak_ewma.h"

namespace switchyard::balancer::resource_aware {
namespace {

constexpr size_t kMaxScan = 32;  // score every member up to this many
constexpr size_t kSamples = 16;  // else this many random ones

class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "resource_aware"; }
  std::unique_ptr<PolicyTable> build(const config::Cluster& cluster, const Members& members,
                                     const ClusterState& state) const override {
    return std::make_unique<Table>(cluster, members, state);
  }
  std::vector<config::ClusterBlockReader> blocks() const override { return {block_reader()}; }
  PolicyTraits traits(const config::Cluster&) const override {
    PolicyTraits t;
    t.weighs_slow_start = true;
    t.uses_latency = true;
    return t;
  }
};

}  // namespace

std::unique_ptr<balancer::Policy> make() { return std::make_unique<Policy>(); }

double share_weight(double score, double lowest_score, double response_ms, double best_response_ms,
                    double weight) {
  if (response_ms > 0 && best_response_ms > 0) {
    // An endpoint that answers slower than the quickest holds each request longer. When its
    // reported load is also above the lowest (by kLatencyEvidence or more), both say the same
    // thing and its load counts that many times: a slowdown of 2.5 turns a score of 0.39 into
    // 0.98, nearly full. An endpoint that is slower but less loaded than the others (its
    // queue is shorter) is not penalised: it takes traffic until its load meets theirs.
    const double slowdown =
        (response_ms + kResponseFloorMs) / (best_response_ms + kResponseFloorMs);
    const double evidence = std::clamp((score - lowest_score) / kLatencyEvidence, 0.0, 1.0);
    score *= 1 + (slowdown - 1) * evidence;
  }
  const double s = std::clamp(score, kMinShareScore, kMaxShareScore);
  const double headroom = (1 - s) / s;  // capacity left per unit of capacity used
  return weight * headroom * headroom;
}

Table::Table(const config::Cluster& cluster, const Members& members, const ClusterState& state)
    : members_(members),
      model_(config_of(cluster), &state.weights),
      mode_(config_of(cluster).score),
      draw_(members) {}

void Table::prepare(WorkerLbState& lb) const { lb.credit.assign(members_.size(), 0); }

uint32_t Table::pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const {
  if (members_.empty()) return kNone;
  const int64_t now = in.now();
  return mode_ == Config::Score::kFused ? pick_fused(filter, lb, now) : pick_seed(filter, lb, now);
}

bool Table::claim_refresh(uint32_t i, int64_t now) const {
  auto& load = *members_[i].load;
  if (!model_.stale(load, now)) return false;
  int64_t due = load.refresh_at_ns.load(std::memory_order_relaxed);
  return now >= due && load.refresh_at_ns.compare_exchange_strong(
                           due, now + model_.refresh_interval_ns(), std::memory_order_relaxed);
}

// The fused pick (README, "Latency-aware balancing"): two draws by configured weight (three
// where the cluster has three or more: the winner of the first two meets the third); then
//   - both idle and about as quick (or unmeasured): nothing queues on either and their latency
//     says nothing apart, so the reports decide as the seed's pick would: a smooth weighted
//     round robin between the two over the seed's share weights (weight x headroom^2);
//   - otherwise the lower latency cost (latency^1.5 x (in flight + 1) / weight) wins, and the
//     reports' load counts in it (a factor of 1 / headroom^2 on each side) only where it agrees
//     with the latency: the slower one is also the more loaded, or the two are about as
//     quick. Where they disagree a little (the endpoint that reports more load answers faster:
//     it is busier because it is quicker, a full queue of short requests), the latency decides;
//     where they disagree by kBelievedGap or more of score (0.9 CPU against 0.1), the reports
//     count anyway: a latency sample or two (a connect, a scheduler hiccup on a busy host)
//     must not send everything to an endpoint that says it is nearly full.
uint32_t Table::pick_fused(const Filter& filter, WorkerLbState& lb, int64_t now) const {
  const uint32_t a = draw_.draw(filter, lb, kNone);
  if (a == kNone) return kNone;
  if (claim_refresh(a, now)) return a;
  const uint32_t b = draw_.draw(filter, lb, a);
  if (b == kNone) return a;
  if (claim_refresh(b, now)) return b;
  // A third candidate where there are three or more: with two draws out of three endpoints,
  // a third of the picks never see the best one (when one endpoint of three is quick, the pair
  // of the other two still takes a third of the traffic).
  uint32_t c = kNone;
  if (members_.size() >= 3) {
    for (int k = 0; k < 3 && c == kNone; ++k) {
      c = draw_.draw(filter, lb, a);
      if (c == b) c = kNone;
    }
    if (c != kNone && claim_refresh(c, now)) return c;
  }
  bool share = false;
  uint32_t winner = duel(a, b, lb, now, &share);
  if (!share && c != kNone) winner = duel(winner, c, lb, now, &share);
  // Idle and alike: the seed's smooth weighted round robin over every member (exact shares in
  // order of load, however few the requests); in large clusters, between the two compared.
  if (share && members_.size() <= kMaxScan) return pick_seed(filter, lb, now);
  return winner;
}

uint32_t Table::duel(uint32_t a, uint32_t b, WorkerLbState& lb, int64_t now, bool* share) const {
  const auto& ma = members_[a];
  const auto& mb = members_[b];
  const int64_t active_a = ma.load->active_requests.load(std::memory_order_relaxed);
  const int64_t active_b = mb.load->active_requests.load(std::memory_order_relaxed);
  const double ea = ma.load->latency_estimate(now);
  const double eb = mb.load->latency_estimate(now);
  const double sa = model_.score(ma, now);
  const double sb = model_.score(mb, now);
  // Two idle endpoints are compared on their smoothed latency (the EWMA of response heads and
  // check round trips): with nothing queued the peak estimate is one sample's service time, and
  // a single slow sample on a busy host must not turn a share into a rout. A failure's penalty
  // is never noise: an endpoint that carries one (or has no smoothed figure yet) is judged by
  // its peak estimate.
  auto smoothed = [](const EndpointRef& m, double peak) {
    const double l = m.load->latency_ms.load(std::memory_order_relaxed);
    return l < 0 || peak >= PeakEwma::kFailurePenaltyMs ? peak : l;
  };
  const bool idle = active_a == 0 && active_b == 0;
  const Verdict v = idle
                        ? fused_verdict(smoothed(ma, ea), smoothed(mb, eb), 0, 0, std::abs(sa - sb))
                        : fused_verdict(ea, eb, active_a, active_b, std::abs(sa - sb));
  if (v == Verdict::kShare) {
    *share = true;
    if (members_.size() <= kMaxScan) return a;  // the caller asks the seed
    if (lb.credit.size() < members_.size()) prepare(lb);
    const double wa = share_weight(sa, sa, 0, 0, effective_weight(ma));
    const double wb = share_weight(sb, sb, 0, 0, effective_weight(mb));
    double& credit_a = lb.credit[a];
    double& credit_b = lb.credit[b];
    credit_a += wa;
    credit_b += wb;
    const uint32_t pick = credit_b > credit_a ? b : a;
    lb.credit[pick] -= wa + wb;
    return pick;
  }
  double ca = latency_cost(ea, eb < 0 ? 0 : eb, active_a, effective_weight(ma));
  double cb = latency_cost(eb, ea < 0 ? 0 : ea, active_b, effective_weight(mb));
  if (v == Verdict::kLoadCounts || (sa >= sb) == (ea >= eb) || std::abs(sa - sb) >= kBelievedGap) {
    // The reports agree with the latency: the seed's weight, slowdown and evidence included
    // (a slower endpoint whose score is also 0.05 or more above the other's has its score
    // multiplied by its slowdown), divides each cost.
    const double lowest = std::min(sa, sb);
    const double quickest = std::min(ea, eb);
    ca /= share_weight(sa, lowest, ea, quickest, 1.0);
    cb /= share_weight(sb, lowest, eb, quickest, 1.0);
  }
  return cb < ca ? b : a;
}

Verdict fused_verdict(double latency_a, double latency_b, int64_t active_a, int64_t active_b,
                      double score_gap) {
  const bool idle = active_a == 0 && active_b == 0;
  // Idle, and reports far apart: nothing queues on either, so their latency is one sample or
  // two of service time (a connect, a scheduler hiccup on a busy host) against a report that
  // says one of them is much fuller: the reports decide.
  if (idle && score_gap >= kBelievedGap) return Verdict::kShare;
  const bool unmeasured = latency_a < 0 || latency_b < 0;
  const double hi = std::max(latency_a, latency_b);
  const double lo = std::min(latency_a, latency_b);
  const bool alike = unmeasured || hi <= lo * kAlikeLatency + kResponseFloorMs;
  if (!alike) return Verdict::kLatency;
  return idle ? Verdict::kShare : Verdict::kLoadCounts;
}

uint32_t Table::pick_seed(const Filter& filter, WorkerLbState& lb, int64_t now) const {
  if (lb.credit.size() < members_.size()) prepare(lb);
  struct Candidate {
    double weight;
    double score;
    double response_ms;
    uint32_t index;
  };
  std::array<Candidate, kMaxScan> candidates;
  size_t n = 0;
  uint32_t refresh = kNone;
  auto consider = [&](uint32_t i) {
    if (!filter.acceptable(i)) return;
    auto& load = *members_[i].load;
    if (refresh == kNone && claim_refresh(i, now)) refresh = i;
    candidates[n++] = Candidate{0, model_.estimate(members_[i], now).score,
                                load.response_ms.load(std::memory_order_relaxed), i};
  };
  const bool all = members_.size() <= kMaxScan;
  if (all) {
    for (uint32_t i = 0; i < members_.size() && refresh == kNone; ++i) consider(i);
  } else {
    for (size_t k = 0; k < kSamples && refresh == kNone; ++k) {
      consider(static_cast<uint32_t>(lb.next_random() % members_.size()));
    }
  }
  if (refresh != kNone) return refresh;
  if (n == 0) return kNone;
  double best_ms = -1;
  double lowest = candidates[0].score;
  for (size_t i = 0; i < n; ++i) {
    double ms = candidates[i].response_ms;
    if (ms > 0 && (best_ms < 0 || ms < best_ms)) best_ms = ms;
    lowest = std::min(lowest, candidates[i].score);
  }
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& c = candidates[i];
    c.weight =
        share_weight(c.score, lowest, c.response_ms, best_ms, effective_weight(members_[c.index]));
    total += c.weight;
  }
  if (!all) {
    // Sampled (large clusters): a weighted draw among the samples.
    double r = lb.uniform() * total;
    for (size_t i = 0; i < n; ++i) {
      r -= candidates[i].weight;
      if (r <= 0) return candidates[i].index;
    }
    return candidates[n - 1].index;
  }
  // Smooth weighted round robin (nginx's) over the live weights: each candidate earns its
  // weight, the richest is picked and pays the total. Shares follow the weights, and the
  // picks interleave (a b a c a b a ...) instead of arriving in bursts.
  size_t best = 0;
  for (size_t i = 0; i < n; ++i) {
    double& credit = lb.credit[candidates[i].index];
    credit += candidates[i].weight;
    if (credit > lb.credit[candidates[best].index]) best = i;
  }
  lb.credit[candidates[best].index] -= total;
  return candidates[best].index;
}

}  // namespace switchyard::balancer::resource_aware
