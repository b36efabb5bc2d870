#include "switchyard/balancer/resource_aware.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>

namespace switchyard::balancer {
namespace {

constexpr size_t kMaxScan = 32;  // score every endpoint up to this many
constexpr size_t kSamples = 16;  // else this many random ones
constexpr double kSlopeAlpha = 0.2;
constexpr double kMaxSlope = 0.1;  // 10 requests in flight = a full CPU, at most

// Moves from toward to by at most kMaxStepPerReport.
double step_toward(double from, double to) {
  return from + std::clamp(to - from, -kMaxStepPerReport, kMaxStepPerReport);
}

}  // namespace

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

LoadModel::LoadModel(const config::ResourceAware& cfg)
    : cpu_weight_(cfg.cpu_weight),
      memory_weight_(cfg.memory_weight),
      connection_weight_(cfg.connection_weight),
      capacity_(std::max<double>(1, cfg.connection_capacity)),
      max_age_ns_(std::max<double>(
          1,
          static_cast<double>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.max_report_age).count()))) {}

double LoadModel::influence(int64_t age_ns) const {
  double x = static_cast<double>(std::max<int64_t>(age_ns, 0)) / max_age_ns_;
  double x2 = x * x;
  return 1.0 / (1.0 + x2 * x2);
}

bool LoadModel::stale(const registry::EndpointState& s, int64_t now_ns) const {
  const int64_t at = s.report_at_ns.load(std::memory_order_relaxed);
  return at == 0 || static_cast<double>(now_ns - at) > max_age_ns_ / 2;
}

LoadModel::Estimate LoadModel::estimate(const Endpoint& ep, int64_t now_ns) const {
  const auto& s = *ep.state;
  Estimate e;
  const int64_t active = s.active_requests.load(std::memory_order_relaxed);
  const double capacity = capacity_ * ep.weight;
  e.connections = static_cast<double>(std::max<int64_t>(active, 0)) / capacity;
  e.cpu = ep.base_cpu;
  e.memory = ep.base_memory;
  const int64_t at = s.report_at_ns.load(std::memory_order_relaxed);
  if (at != 0) {
    const int64_t age = now_ns - at;
    e.report_age_s = static_cast<double>(std::max<int64_t>(age, 0)) / 1e9;
    const double weight = influence(age);
    double slope = s.cpu_per_request.load(std::memory_order_relaxed);
    if (slope < 0) slope = 1.0 / capacity;  // prior: connection_capacity requests fill a CPU
    const int64_t since = active - s.report_active.load(std::memory_order_relaxed);
    const double predicted = std::clamp(
        s.report_cpu.load(std::memory_order_relaxed) + slope * static_cast<double>(since), 0.0,
        1.0);
    e.cpu += weight * (predicted - e.cpu);
    e.memory += weight * (s.report_memory.load(std::memory_order_relaxed) - e.memory);
  }
  const double health = std::max(s.health_score.load(std::memory_order_relaxed), 0.01);
  e.score = (e.cpu * cpu_weight_ + e.memory * memory_weight_ + e.connections * connection_weight_) /
            health;
  return e;
}

void apply_load_report(registry::EndpointState& s, const LoadReport& report, int64_t now_ns) {
  const int64_t active = s.active_requests.load(std::memory_order_relaxed);
  const bool first = s.report_at_ns.load(std::memory_order_relaxed) == 0;
  if (auto cpu = report.cpu_for_score()) {
    const double before = s.report_cpu.load(std::memory_order_relaxed);
    if (!first) {
      const int64_t moved = active - s.report_active.load(std::memory_order_relaxed);
      if (moved >= 2 || moved <= -2) {
        double sample = std::clamp((*cpu - before) / static_cast<double>(moved), 0.0, kMaxSlope);
        double slope = s.cpu_per_request.load(std::memory_order_relaxed);
        slope = slope < 0 ? sample : slope + kSlopeAlpha * (sample - slope);
        s.cpu_per_request.store(slope, std::memory_order_relaxed);
      }
    }
    s.report_cpu.store(first ? *cpu : step_toward(before, *cpu), std::memory_order_relaxed);
  }
  if (report.memory) {
    const double before = s.report_memory.load(std::memory_order_relaxed);
    s.report_memory.store(first ? *report.memory : step_toward(before, *report.memory),
                          std::memory_order_relaxed);
  }
  if (first && !report.memory) {
    s.report_memory.store(0.5, std::memory_order_relaxed);  // unknown: neutral
  }
  if (first && !report.cpu_for_score()) s.report_cpu.store(0.5, std::memory_order_relaxed);
  s.report_active.store(active, std::memory_order_relaxed);
  s.report_at_ns.store(now_ns, std::memory_order_relaxed);
  s.reports.fetch_add(1, std::memory_order_relaxed);
}

LoadReportResult receive_load_report(registry::EndpointState& state, std::string_view header) {
  LoadReport report;
  const auto result = parse_load_report(header, report);
  if (result == LoadReportResult::kOk) apply_load_report(state, report, steady_now_ns());
  return result;
}

ResourceAware::ResourceAware(const config::Cluster& cluster, const std::vector<Endpoint>& endpoints)
    : endpoints_(endpoints), model_(cluster.resource_aware) {}

double share_weight(double score, double lowest_score, double response_ms, double best_response_ms,
                    uint32_t weight) {
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
  return static_cast<double>(weight) * headroom * headroom;
}

void ResourceAware::prepare(WorkerLbState& state) const { state.credit.assign(endpoints_.size(), 0); }

const Endpoint* ResourceAware::pick(const PickContext& ctx, WorkerLbState& state) const {
  if (endpoints_.empty()) return nullptr;
  if (state.credit.size() < endpoints_.size()) prepare(state);  // a locality group's state
  const int64_t now = steady_now_ns();
  struct Candidate {
    double weight;
    double score;
    double response_ms;
    uint32_t index;  // position in endpoints_
  };
  std::array<Candidate, kMaxScan> candidates;
  for (bool strict : {true, false}) {
    size_t n = 0;
    const Endpoint* refresh = nullptr;
    auto consider = [&](const Endpoint& ep) {
      auto& s = *ep.state;
      if (!s.usable() || (strict && ctx.was_tried(ep.index))) return;
      if (refresh == nullptr && model_.stale(s, now)) {
        int64_t due = s.refresh_at_ns.load(std::memory_order_relaxed);
        if (now >= due && s.refresh_at_ns.compare_exchange_strong(
                              due, now + model_.refresh_interval_ns(), std::memory_order_relaxed)) {
          refresh = &ep;
        }
      }
      candidates[n++] = Candidate{0, model_.estimate(ep, now).score,
                                  s.response_ms.load(std::memory_order_relaxed),
                                  static_cast<uint32_t>(&ep - endpoints_.data())};
    };
    const bool all = endpoints_.size() <= kMaxScan;
    if (all) {
      for (const auto& ep : endpoints_) {
        consider(ep);
        if (refresh) return refresh;
      }
    } else {
      for (size_t i = 0; i < kSamples && refresh == nullptr; ++i) {
        consider(endpoints_[state.next_random() % endpoints_.size()]);
      }
      if (refresh) return refresh;
    }
    if (n == 0) continue;
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
      c.weight = share_weight(c.score, lowest, c.response_ms, best_ms, endpoints_[c.index].weight);
      total += c.weight;
    }
    if (!all) {
      // Sampled (large clusters): a weighted draw among the samples.
      double r = static_cast<double>(state.next_random() >> 11) * 0x1.0p-53 * total;
      for (size_t i = 0; i < n; ++i) {
        r -= candidates[i].weight;
        if (r <= 0) return &endpoints_[candidates[i].index];
      }
      return &endpoints_[candidates[n - 1].index];
    }
    // Smooth weighted round robin (nginx's) over the live weights: each candidate earns its
    // weight, the richest is picked and pays the total. Shares follow the weights, and the
    // picks interleave (a b a c a b a ...) instead of arriving in bursts.
    size_t best = 0;
    for (size_t i = 0; i < n; ++i) {
      double& credit = state.credit[candidates[i].index];
      credit += candidates[i].weight;
      if (credit > state.credit[candidates[best].index]) best = i;
    }
    state.credit[candidates[best].index] -= total;
    return &endpoints_[candidates[best].index];
  }
  return nullptr;
}

}  // namespace switchyard::balancer
