#include "switchyard/breaker/outlier_detector.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cmath>

#include "switchyard/common/logging.h"

namespace switchyard::breaker {

using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kScoreInterval = std::chrono::seconds(1);
constexpr auto kRelaxed = std::memory_order_relaxed;

bool transition(EndpointBreaker& state, Position from, Position to) {
  return state.position.compare_exchange_strong(from, to, kRelaxed);
}
}  // namespace

const char* to_string(Position p) {
  switch (p) {
    case Position::kClosed:
      return "closed";
    case Position::kOpen:
      return "open";
    case Position::kHalfOpen:
      return "half_open";
    case Position::kTrial:
      return "trial";
    case Position::kTrialFailed:
      return "trial_failed";
  }
  return "unknown";
}

bool record_success(EndpointBreaker& state, bool trial) {
  state.successes.fetch_add(1, kRelaxed);
  // Read first: a store on every success would bounce the cache line between workers.
  if (state.consecutive_failures.load(kRelaxed) != 0) state.consecutive_failures.store(0, kRelaxed);
  if (state.consecutive_local_failures.load(kRelaxed) != 0)
    state.consecutive_local_failures.store(0, kRelaxed);
  return trial && transition(state, Position::kTrial, Position::kClosed);
}

bool record_failure(EndpointBreaker& state, uint32_t consecutive_limit, bool trial,
                    bool local_origin, bool split_local_origin, uint32_t local_limit) {
  state.failures.fetch_add(1, kRelaxed);
  if (local_origin) state.local_failures.fetch_add(1, kRelaxed);
  uint32_t run = 0;
  uint32_t limit = consecutive_limit;
  if (split_local_origin && local_origin) {
    run = state.consecutive_local_failures.fetch_add(1, kRelaxed) + 1;
    limit = local_limit;
  } else {
    run = state.consecutive_failures.fetch_add(1, kRelaxed) + 1;
  }
  if (trial) return transition(state, Position::kTrial, Position::kTrialFailed);
  if (limit == 0 || run < limit) return false;
  if (state.position.load(kRelaxed) != Position::kClosed) return false;
  return !state.ejection_requested.exchange(true, kRelaxed);
}

bool claim_trial(EndpointBreaker& state) {
  return transition(state, Position::kHalfOpen, Position::kTrial);
}

void abandon_trial(EndpointBreaker& state) {
  transition(state, Position::kTrial, Position::kHalfOpen);
}

double next_health_score(double score, uint64_t ok, uint64_t failed) {
  uint64_t total = ok + failed;
  if (total == 0) return score;
  double sample = static_cast<double>(ok) / static_cast<double>(total);
  return std::clamp(score + kHealthScoreAlpha * (sample - score), kMinHealthScore, 1.0);
}

std::chrono::milliseconds ejection_time(const config::CircuitBreaker& cb, uint32_t ejections) {
  auto base = std::chrono::duration_cast<std::chrono::milliseconds>(cb.base_ejection);
  auto max = std::chrono::duration_cast<std::chrono::milliseconds>(cb.max_ejection);
  auto t = base;
  for (uint32_t i = 0; i < ejections && t < max; ++i) t *= 2;
  return std::min(t, max);
}

struct OutlierDetector::Impl {
  explicit Impl(boost::asio::io_context& c) : ioc(c) {}
  boost::asio::io_context& ioc;
  bool stopped = false;
};

OutlierDetector::OutlierDetector(boost::asio::io_context& control)
    : impl_(std::make_shared<Impl>(control)), last_score_(Clock::now()) {}

OutlierDetector::~OutlierDetector() { stop(); }

std::shared_ptr<EndpointBreaker> OutlierDetector::state(const std::string& key) {
  auto& slot = states_[key];
  if (!slot) slot = std::make_shared<EndpointBreaker>();
  return slot;
}

std::shared_ptr<ClusterStats> OutlierDetector::stats(const std::string& cluster) {
  auto& slot = stats_[cluster];
  if (!slot) slot = std::make_shared<ClusterStats>();
  return slot;
}

void OutlierDetector::update(std::vector<Cluster> clusters) {
  // A cluster keeps its rate-evaluation clock across a reload when it keeps its name.
  std::map<std::string, Clock::time_point> last;
  for (size_t i = 0; i < clusters_.size() && i < last_rates_.size(); ++i)
    last[clusters_[i].name] = last_rates_[i];
  clusters_ = std::move(clusters);
  last_rates_.assign(clusters_.size(), Clock::now());
  for (size_t i = 0; i < clusters_.size(); ++i) {
    if (auto it = last.find(clusters_[i].name); it != last.end()) last_rates_[i] = it->second;
  }
  where_.clear();
  std::map<std::string, std::shared_ptr<EndpointBreaker>> live;
  std::map<std::string, std::shared_ptr<ClusterStats>> live_stats;
  for (size_t c = 0; c < clusters_.size(); ++c) {
    for (size_t m = 0; m < clusters_[c].members.size(); ++m) {
      where_[clusters_[c].members[m].state.get()] = {c, m};
    }
    live_stats[clusters_[c].name] = clusters_[c].stats;
  }
  for (auto& [key, state] : states_) {
    if (where_.count(state.get())) live[key] = state;
  }
  states_ = std::move(live);
  stats_ = std::move(live_stats);
}

void OutlierDetector::stop() { impl_->stopped = true; }

void OutlierDetector::notify(std::shared_ptr<EndpointBreaker> state) {
  boost::asio::post(impl_->ioc, [this, impl = impl_, state = std::move(state)] {
    if (!impl->stopped) evaluate(*state, Clock::now());
  });
}

OutlierDetector::Found OutlierDetector::find(const EndpointBreaker& state) const {
  auto it = where_.find(&state);
  if (it == where_.end()) return {};
  const auto& cluster = clusters_[it->second.first];
  return {&cluster, &cluster.members[it->second.second]};
}

void OutlierDetector::evaluate(EndpointBreaker& state, Clock::time_point now) {
  auto [cluster, member] = find(state);
  if (member == nullptr) {
    // Removed by a reload while the request was in flight: nothing uses it any more.
    state.ejection_requested.store(false, kRelaxed);
    return;
  }
  switch (state.position.load(kRelaxed)) {
    case Position::kClosed:
      if (state.ejected_until != Clock::time_point{})
        readmit(*member, *cluster, now, "trial request");
      if (state.ejection_requested.load(kRelaxed)) {
        const auto& cb = cluster->config;
        uint32_t limit = cb.consecutive_failures;
        if (limit > 0 && state.consecutive_failures.load(kRelaxed) >= limit) {
          eject(*member, *cluster, now, false);
        } else if (cb.split_local_origin && cb.consecutive_local_failures > 0 &&
                   state.consecutive_local_failures.load(kRelaxed) >=
                       cb.consecutive_local_failures) {
          cluster->stats->counters.add(ClusterStats::kEjectionsLocalOrigin);
          eject(*member, *cluster, now, false,
                std::to_string(cb.consecutive_local_failures) +
                    " consecutive local-origin failures (connect, reset, timeout)");
        }
        state.ejection_requested.store(false, kRelaxed);
      }
      break;
    case Position::kTrialFailed:
      eject(*member, *cluster, now, true);
      break;
    default:
      break;
  }
}

void OutlierDetector::eject(const Member& m, const Cluster& cluster, Clock::time_point now,
                            bool after_trial, const std::string& why) {
  auto& state = *m.state;
  const auto& cb = cluster.config;
  if (!after_trial) {
    // An endpoint coming back from a failed trial is already counted among the ejected.
    size_t ejected = 0;
    for (const auto& e : cluster.members) ejected += e.state->ejected() ? 1 : 0;
    auto allowed = static_cast<size_t>(
        std::floor(cb.max_ejected_fraction * static_cast<double>(cluster.members.size()) + 1e-9));
    if (ejected + 1 > allowed) {
      cluster.stats->counters.add(ClusterStats::kEjectionsSkipped);
      logs::registry().warn(
          "endpoint {} of cluster '{}' would be ejected ({}) but stays in: {} of {} endpoints "
          "are ejected already (max_ejected_fraction {})",
          m.address, cluster.name,
          why.empty()
              ? std::to_string(state.consecutive_failures.load(kRelaxed)) + " failures in a row"
              : why,
          ejected, cluster.members.size(), cb.max_ejected_fraction);
      state.consecutive_failures.store(0, kRelaxed);
      state.consecutive_local_failures.store(0, kRelaxed);
      return;
    }
  }
  auto duration = ejection_time(cb, state.ejections);
  ++state.ejections;
  state.ejections_total.fetch_add(1, kRelaxed);
  state.ejected_until = now + duration;
  state.ejection_ends_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(state.ejected_until.time_since_epoch())
          .count(),
      kRelaxed);
  state.consecutive_failures.store(0, kRelaxed);
  state.consecutive_local_failures.store(0, kRelaxed);
  state.position.store(Position::kOpen, kRelaxed);
  cluster.stats->counters.add(ClusterStats::kEjections);
  logs::registry().warn("endpoint {} of cluster '{}' ejected for {} ({})", m.address, cluster.name,
                        format_duration(duration),
                        after_trial ? std::string("its trial request failed")
                        : !why.empty()
                            ? why
                            : std::to_string(cb.consecutive_failures) + " consecutive failures");
}

std::vector<size_t> success_rate_outliers(const std::vector<RateSample>& samples,
                                          const config::SuccessRateEjection& cfg) {
  std::vector<size_t> out;
  double sum = 0, sum_sq = 0;
  size_t n = 0;
  for (const auto& s : samples) {
    if (s.requests < cfg.request_volume) continue;
    const double rate = 1.0 - static_cast<double>(s.failures) / static_cast<double>(s.requests);
    sum += rate;
    sum_sq += rate * rate;
    ++n;
  }
  if (n == 0 || n < cfg.minimum_hosts) return out;
  const double mean = sum / static_cast<double>(n);
  const double variance = std::max(0.0, sum_sq / static_cast<double>(n) - mean * mean);
  const double threshold = mean - cfg.stdev_factor * std::sqrt(variance);
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (s.requests < cfg.request_volume) continue;
    const double rate = 1.0 - static_cast<double>(s.failures) / static_cast<double>(s.requests);
    if (rate < threshold) out.push_back(i);
  }
  return out;
}

std::vector<size_t> failure_percentage_outliers(const std::vector<RateSample>& samples,
                                                const config::FailurePercentageEjection& cfg) {
  std::vector<size_t> out;
  size_t n = 0;
  for (const auto& s : samples) n += s.requests >= cfg.request_volume ? 1 : 0;
  if (n == 0 || n < cfg.minimum_hosts) return out;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (s.requests < cfg.request_volume) continue;
    if (100.0 * static_cast<double>(s.failures) >=
        cfg.threshold * static_cast<double>(s.requests)) {
      out.push_back(i);
    }
  }
  return out;
}

// The rate detectors (README, "Outlier detection by rates"): over the outcomes since the last
// evaluation, per endpoint, all failures against all requests; with split_local_origin,
// twice: the endpoint's own answers (5xx against responses) and local-origin failures
// (connect, reset, timeout against tries), each judged on its own. An endpoint already
// ejected is left out of the statistics; ejections go through eject() and so through
// max_ejected_fraction.
void OutlierDetector::evaluate_rates(size_t ci, Clock::time_point now) {
  const Cluster& cluster = clusters_[ci];
  const auto& cb = cluster.config;
  std::vector<RateSample> all, external, local;
  std::vector<size_t> members;
  for (size_t i = 0; i < cluster.members.size(); ++i) {
    auto& st = *cluster.members[i].state;
    const uint64_t ok = st.successes.load(kRelaxed);
    const uint64_t failed = st.failures.load(kRelaxed);
    const uint64_t lfailed = st.local_failures.load(kRelaxed);
    const uint64_t d_ok = ok - st.rated_successes;
    const uint64_t d_failed = failed - st.rated_failures;
    const uint64_t d_local = std::min(lfailed - st.rated_local, d_failed);
    st.rated_successes = ok;
    st.rated_failures = failed;
    st.rated_local = lfailed;
    if (st.ejected()) continue;
    members.push_back(i);
    all.push_back({d_ok + d_failed, d_failed});
    external.push_back({d_ok + d_failed - d_local, d_failed - d_local});
    local.push_back({d_ok + d_failed, d_local});
  }
  std::vector<std::pair<size_t, std::string>> verdicts;
  auto judge = [&](const std::vector<RateSample>& samples, const char* kind) {
    if (cb.success_rate) {
      for (size_t k : success_rate_outliers(samples, *cb.success_rate)) {
        const auto& s = samples[k];
        verdicts.emplace_back(members[k],
                              fmt::format("{}success rate {:.1f}% over {} requests, below the "
                                          "cluster's mean - {} x stdev",
                                          kind, 100.0 - 100.0 * s.failures / s.requests, s.requests,
                                          cb.success_rate->stdev_factor));
      }
    }
    if (cb.failure_percentage) {
      for (size_t k : failure_percentage_outliers(samples, *cb.failure_percentage)) {
        const auto& s = samples[k];
        verdicts.emplace_back(members[k],
                              fmt::format("{}failures {:.1f}% of {} requests, at least {}%", kind,
                                          100.0 * s.failures / s.requests, s.requests,
                                          cb.failure_percentage->threshold));
      }
    }
  };
  if (cb.split_local_origin) {
    judge(external, "");
    judge(local, "local-origin ");
  } else {
    judge(all, "");
  }
  for (const auto& [i, why] : verdicts) {
    const Member& m = cluster.members[i];
    if (m.state->ejected()) continue;  // judged twice in this round
    const bool by_rate = why.find("success rate") != std::string::npos;
    const uint64_t before = cluster.stats->counters.value(ClusterStats::kEjections);
    eject(m, cluster, now, false, why);
    if (cluster.stats->counters.value(ClusterStats::kEjections) != before) {
      cluster.stats->counters.add(by_rate ? ClusterStats::kEjectionsSuccessRate
                                          : ClusterStats::kEjectionsFailurePercentage);
    }
  }
}

void OutlierDetector::readmit(const Member& m, const Cluster& cluster, Clock::time_point now,
                              const char* how) {
  auto& state = *m.state;
  state.ejected_until = {};
  state.ejection_ends_ns.store(0, kRelaxed);
  state.closed_since = now;
  logs::registry().info("endpoint {} of cluster '{}' is back in service ({} passed)", m.address,
                        cluster.name, how);
}

void OutlierDetector::on_check(EndpointBreaker& state, bool passed) {
  (passed ? state.checks_passed : state.checks_failed) += 1;
  auto [cluster, member] = find(state);
  if (member == nullptr) return;
  auto now = Clock::now();
  switch (state.position.load(kRelaxed)) {
    case Position::kOpen:
      // A passing active check ends an ejection early (DESIGN.md); requests still decide.
      if (passed && transition(state, Position::kOpen, Position::kHalfOpen)) {
        logs::registry().info(
            "endpoint {} of cluster '{}' passed a check while ejected: the next "
            "request is a trial",
            member->address, cluster->name);
      }
      break;
    case Position::kHalfOpen:
      // No request came to decide since the ejection ended: the check does.
      if (passed) {
        if (transition(state, Position::kHalfOpen, Position::kClosed)) {
          readmit(*member, *cluster, now, "health check");
        }
      } else if (transition(state, Position::kHalfOpen, Position::kTrialFailed)) {
        eject(*member, *cluster, now, true);
      }
      break;
    default:
      break;
  }
}

void OutlierDetector::tick(Clock::time_point now) {
  for (const auto& cluster : clusters_) {
    for (const auto& m : cluster.members) {
      auto& state = *m.state;
      auto p = state.position.load(kRelaxed);
      if (p == Position::kOpen && now >= state.ejected_until &&
          transition(state, Position::kOpen, Position::kHalfOpen)) {
        logs::registry().info("endpoint {} of cluster '{}': ejection over, next request is a trial",
                              m.address, cluster.name);
      } else if (p == Position::kTrialFailed) {
        evaluate(state, now);  // normally done by notify(); covers a lost notification
      } else if (p == Position::kClosed && state.ejections > 0 &&
                 state.ejected_until == Clock::time_point{} &&
                 now - state.closed_since >= cluster.config.max_ejection) {
        state.ejections = 0;  // long enough in service: the next ejection is short again
      }
    }
  }
  if (now - last_score_ >= kScoreInterval) {
    last_score_ = now;
    update_health_scores();
  }
  last_rates_.resize(clusters_.size(), now);
  for (size_t ci = 0; ci < clusters_.size(); ++ci) {
    const auto& cb = clusters_[ci].config;
    if (!cb.success_rate && !cb.failure_percentage) continue;
    if (now - last_rates_[ci] < cb.interval) continue;
    last_rates_[ci] = now;
    evaluate_rates(ci, now);
  }
}

void OutlierDetector::update_health_scores() {
  for (const auto& cluster : clusters_) {
    for (const auto& m : cluster.members) {
      auto& state = *m.state;
      uint64_t ok = state.successes.load(kRelaxed);
      uint64_t failed = state.failures.load(kRelaxed);
      uint64_t d_ok = ok - state.scored_successes + state.checks_passed;
      uint64_t d_failed = failed - state.scored_failures + state.checks_failed;
      state.scored_successes = ok;
      state.scored_failures = failed;
      state.checks_passed = 0;
      state.checks_failed = 0;
      state.health_score.store(next_health_score(state.health_score.load(kRelaxed), d_ok, d_failed),
                               kRelaxed);
    }
  }
}

}  // namespace switchyard::breaker
