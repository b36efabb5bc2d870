#include "switchyard/breaker/outlier_detector.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>

#include "switchyard/common/logging.h"

namespace switchyard::breaker {

using registry::Breaker;
using registry::EndpointState;
using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kTick = std::chrono::milliseconds(100);
constexpr auto kScoreInterval = std::chrono::seconds(1);
constexpr auto kRelaxed = std::memory_order_relaxed;

bool transition(EndpointState& state, Breaker from, Breaker to) {
  return state.breaker.compare_exchange_strong(from, to, kRelaxed);
}
}  // namespace

bool record_success(EndpointState& state, bool trial) {
  state.successes.fetch_add(1, kRelaxed);
  // Read first: a store on every success would bounce the cache line between workers.
  if (state.consecutive_failures.load(kRelaxed) != 0) state.consecutive_failures.store(0, kRelaxed);
  return trial && transition(state, Breaker::kTrial, Breaker::kClosed);
}

bool record_failure(EndpointState& state, uint32_t consecutive_limit, bool trial) {
  state.failures.fetch_add(1, kRelaxed);
  uint32_t run = state.consecutive_failures.fetch_add(1, kRelaxed) + 1;
  if (trial) return transition(state, Breaker::kTrial, Breaker::kTrialFailed);
  if (consecutive_limit == 0 || run < consecutive_limit) return false;
  if (state.breaker.load(kRelaxed) != Breaker::kClosed) return false;
  return !state.ejection_requested.exchange(true, kRelaxed);
}

bool claim_trial(EndpointState& state) {
  return transition(state, Breaker::kHalfOpen, Breaker::kTrial);
}

void abandon_trial(EndpointState& state) { transition(state, Breaker::kTrial, Breaker::kHalfOpen); }

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
  explicit Impl(boost::asio::io_context& c) : ioc(c), timer(c) {}
  boost::asio::io_context& ioc;
  boost::asio::steady_timer timer;
  bool running = false;
  bool stopped = false;
};

OutlierDetector::OutlierDetector(boost::asio::io_context& control)
    : impl_(std::make_shared<Impl>(control)) {}

OutlierDetector::~OutlierDetector() { stop(); }

void OutlierDetector::update(std::shared_ptr<const registry::RuntimeSnapshot> snapshot) {
  snapshot_ = std::move(snapshot);
  members_.clear();
  for (const auto& cluster : snapshot_->clusters) {
    uint32_t usable = 0;
    for (const auto& ep : cluster->endpoints) {
      members_[ep.state.get()] = Member{cluster.get()};
      usable += ep.state->usable() ? 1 : 0;
    }
    cluster->state->usable_endpoints.store(usable, kRelaxed);
    cluster->strategy->tick();
  }
  if (!impl_->running && !impl_->stopped) {
    impl_->running = true;
    last_score_ = Clock::now();
    schedule();
  }
}

void OutlierDetector::schedule() {
  impl_->timer.expires_after(kTick);
  impl_->timer.async_wait([this, impl = impl_](boost::system::error_code ec) {
    if (ec || impl->stopped) return;
    tick(Clock::now());
    schedule();
  });
}

void OutlierDetector::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

void OutlierDetector::notify(std::shared_ptr<EndpointState> state) {
  boost::asio::post(impl_->ioc, [this, impl = impl_, state = std::move(state)] {
    if (!impl->stopped) evaluate(*state, Clock::now());
  });
}

const registry::Endpoint* OutlierDetector::find(const EndpointState& state,
                                                const registry::ClusterSnapshot** cluster) const {
  auto it = members_.find(&state);
  if (it == members_.end()) return nullptr;
  *cluster = it->second.cluster;
  for (const auto& ep : it->second.cluster->endpoints) {
    if (ep.state.get() == &state) return &ep;
  }
  return nullptr;
}

void OutlierDetector::evaluate(EndpointState& state, Clock::time_point now) {
  const registry::ClusterSnapshot* cluster = nullptr;
  const registry::Endpoint* ep = find(state, &cluster);
  if (ep == nullptr) {
    // Removed by a reload while the request was in flight: nothing uses it any more.
    state.ejection_requested.store(false, kRelaxed);
    return;
  }
  switch (state.breaker.load(kRelaxed)) {
    case Breaker::kClosed:
      if (state.ejected_until != Clock::time_point{}) readmit(*ep, *cluster, now, "trial request");
      if (state.ejection_requested.load(kRelaxed)) {
        uint32_t limit = cluster->config->circuit_breaker.consecutive_failures;
        if (limit > 0 && state.consecutive_failures.load(kRelaxed) >= limit) {
          eject(*ep, *cluster, now, false);
        }
        state.ejection_requested.store(false, kRelaxed);
      }
      break;
    case Breaker::kTrialFailed:
      eject(*ep, *cluster, now, true);
      break;
    default:
      break;
  }
}

void OutlierDetector::eject(const registry::Endpoint& ep, const registry::ClusterSnapshot& cluster,
                            Clock::time_point now, bool after_trial) {
  auto& state = *ep.state;
  const auto& cb = cluster.config->circuit_breaker;
  if (!after_trial) {
    // An endpoint coming back from a failed trial is already counted among the ejected.
    size_t ejected = 0;
    for (const auto& e : cluster.endpoints) ejected += e.state->ejected() ? 1 : 0;
    auto allowed = static_cast<size_t>(
        std::floor(cb.max_ejected_fraction * static_cast<double>(cluster.endpoints.size()) + 1e-9));
    if (ejected + 1 > allowed) {
      cluster.metrics->add(metrics::ClusterCounter::kEjectionsSkipped);
      logs::registry().warn(
          "endpoint {} of cluster '{}' failed {} times in a row but stays in: {} of {} endpoints "
          "are ejected already (max_ejected_fraction {})",
          ep.address_text, cluster.config->name, state.consecutive_failures.load(kRelaxed), ejected,
          cluster.endpoints.size(), cb.max_ejected_fraction);
      state.consecutive_failures.store(0, kRelaxed);
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
  state.breaker.store(Breaker::kOpen, kRelaxed);
  cluster.metrics->add(metrics::ClusterCounter::kEjections);
  logs::registry().warn("endpoint {} of cluster '{}' ejected for {} ({})", ep.address_text,
                        cluster.config->name, format_duration(duration),
                        after_trial
                            ? "its trial request failed"
                            : std::to_string(cb.consecutive_failures) + " consecutive failures");
}

void OutlierDetector::readmit(const registry::Endpoint& ep,
                              const registry::ClusterSnapshot& cluster, Clock::time_point now,
                              const char* how) {
  auto& state = *ep.state;
  state.ejected_until = {};
  state.ejection_ends_ns.store(0, kRelaxed);
  state.closed_since = now;
  logs::registry().info("endpoint {} of cluster '{}' is back in service ({} passed)",
                        ep.address_text, cluster.config->name, how);
}

void OutlierDetector::on_check(EndpointState& state, bool passed) {
  (passed ? state.checks_passed : state.checks_failed) += 1;
  const registry::ClusterSnapshot* cluster = nullptr;
  const registry::Endpoint* ep = find(state, &cluster);
  if (ep == nullptr) return;
  auto now = Clock::now();
  switch (state.breaker.load(kRelaxed)) {
    case Breaker::kOpen:
      // A passing active check ends an ejection early (DESIGN.md); requests still decide.
      if (passed && transition(state, Breaker::kOpen, Breaker::kHalfOpen)) {
        logs::registry().info(
            "endpoint {} of cluster '{}' passed a check while ejected: the next "
            "request is a trial",
            ep->address_text, cluster->config->name);
      }
      break;
    case Breaker::kHalfOpen:
      // No request came to decide since the ejection ended: the check does.
      if (passed) {
        if (transition(state, Breaker::kHalfOpen, Breaker::kClosed)) {
          readmit(*ep, *cluster, now, "health check");
        }
      } else if (transition(state, Breaker::kHalfOpen, Breaker::kTrialFailed)) {
        eject(*ep, *cluster, now, true);
      }
      break;
    default:
      break;
  }
}

void OutlierDetector::tick(Clock::time_point now) {
  for (const auto& cluster : snapshot_->clusters) {
    const auto& cb = cluster->config->circuit_breaker;
    uint32_t usable = 0;
    for (const auto& ep : cluster->endpoints) usable += ep.state->usable() ? 1 : 0;
    cluster->state->usable_endpoints.store(usable, kRelaxed);
    cluster->strategy->tick();  // the locality layer's region view
    for (const auto& ep : cluster->endpoints) {
      auto& state = *ep.state;
      auto b = state.breaker.load(kRelaxed);
      if (b == Breaker::kOpen && now >= state.ejected_until &&
          transition(state, Breaker::kOpen, Breaker::kHalfOpen)) {
        logs::registry().info("endpoint {} of cluster '{}': ejection over, next request is a trial",
                              ep.address_text, cluster->config->name);
      } else if (b == Breaker::kTrialFailed) {
        evaluate(state, now);  // normally done by notify(); covers a lost notification
      } else if (b == Breaker::kClosed && state.ejections > 0 &&
                 state.ejected_until == Clock::time_point{} &&
                 now - state.closed_since >= cb.max_ejection) {
        state.ejections = 0;  // long enough in service: the next ejection is short again
      }
    }
  }
  if (now - last_score_ >= kScoreInterval) {
    last_score_ = now;
    update_health_scores();
  }
}

void OutlierDetector::update_health_scores() {
  for (const auto& cluster : snapshot_->clusters) {
    for (const auto& ep : cluster->endpoints) {
      auto& state = *ep.state;
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
