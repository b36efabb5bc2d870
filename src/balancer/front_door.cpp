#include "switchyard/balancer/front_door.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "group.h"
#include "load_model.h"
#include "locality.h"
#include "region_forecast.h"
#include "switchyard/common/logging.h"
#include "switchyard/common/siphash.h"
#include "weight_learner.h"

namespace switchyard::balancer {
namespace {

// The key of the hash that gives a hash key its slow-start value (any fixed key: it only has to
// spread keys evenly over [0, 1) independently of the ring's own hash).
const SipKey kWarmKey = SipKey::from_seed("switchyard slow start");

}  // namespace

int64_t bounded_load_cap(double factor, int64_t in_flight, uint32_t usable) {
  if (factor <= 0 || usable == 0) return 0;
  return static_cast<int64_t>(
      std::ceil(factor * static_cast<double>(std::max<int64_t>(in_flight, 0) + 1) / usable));
}

// Ring and table builds: 0.1 ms .. 1 s.
ClusterStats::ClusterStats()
    : ring_rebuild(std::array<double, 9>{0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1}) {}

struct ClusterBalancer::LoadModelHolder {
  LoadModelHolder(const config::Cluster& c, const ClusterState& state)
      : model(resource_aware::config_of(c), &state.weights) {}
  resource_aware::LoadModel model;
};

ClusterBalancer::ClusterBalancer(const registry::ClusterMembership& cluster, const Policy& policy,
                                 Owned owned, std::shared_ptr<ClusterState> state,
                                 std::shared_ptr<ClusterStats> stats,
                                 breaker::OutlierDetector* notify)
    : cluster_(cluster),
      policy_(policy),
      owned_(std::move(owned)),
      state_(std::move(state)),
      stats_(std::move(stats)),
      notify_(notify),
      traits_(policy.traits(*cluster.config)),
      load_model_(std::make_unique<LoadModelHolder>(*cluster.config, *state_)) {
  const config::Cluster& cc = *cluster.config;
  for (size_t i = 0; i < cluster.endpoints.size(); ++i) {
    members_.push_back(EndpointRef{&cluster.endpoints[i], owned_.health[i].get(),
                                   owned_.breakers[i].get(), owned_.loads[i].get(),
                                   static_cast<uint32_t>(i)});
  }
  ClusterStats* timed = traits_.timed_build ? stats_.get() : nullptr;
  all_ = std::make_unique<Group>("", cc, policy, *state_, members_, groups_++, timed);
  learns_ = cc.strategy == "resource_aware" &&
            resource_aware::config_of(cc).weights == resource_aware::Config::Weights::kAdaptive;
  if (!cc.locality) {
    std::map<uint16_t, Members> by_priority;
    for (const auto& m : members_) by_priority[m.endpoint->priority].push_back(m);
    if (by_priority.size() > 1) {
      for (auto& [priority, refs] : by_priority) {
        levels_.push_back(std::make_unique<Group>("priority " + std::to_string(priority), cc,
                                                  policy, *state_, std::move(refs), groups_++,
                                                  nullptr));
      }
    }
    return;
  }
  locality_ = std::make_unique<Locality>(cc, policy, *state_, members_, traits_.zones, groups_);
}

ClusterBalancer::~ClusterBalancer() = default;

void ClusterBalancer::prepare(WorkerCluster& worker, uint64_t seed) const {
  worker.groups.clear();
  worker.groups.reserve(groups_);
  WorkerLbState seeder(0, seed);
  auto add = [&](const Group& g) {
    worker.groups.resize(std::max(worker.groups.size(), g.slot + 1), WorkerLbState(0, 0));
    auto& lb = worker.groups[g.slot];
    lb = WorkerLbState(g.members.size(), seeder.next_random());
    lb.cursor = lb.next_random();  // workers start the round-robin cycle at different points
    g.table->prepare(lb);
  };
  add(*all_);
  for (const auto& level : levels_) add(*level);
  if (locality_) locality_->for_each_group(add);
}

// --- picking -------------------------------------------------------------------------------

const EndpointRef* ClusterBalancer::pick_in(const Group& group, const PickInput& in, PickMemo& memo,
                                            WorkerCluster& worker, int64_t in_flight) const {
  auto& lb = worker.groups[group.slot];
  // Bounded load caps an endpoint against the requests in flight to its group: the cluster's
  // (before this one), or inside a locality group its region's own, not the cluster's average
  // (a busy region would otherwise have every endpoint over it).
  int64_t cap = 0;
  if (traits_.bounded_load > 0) {
    cap = &group == all_.get() ? bounded_load_cap(traits_.bounded_load, in_flight,
                                                  state_->usable_endpoints.load(kRelaxed))
                               : bounded_load_cap(traits_.bounded_load, group.in_flight(),
                                                  group.usable.load(kRelaxed));
  }
  // First an endpoint this request has not tried (and under the cap, and past its slow-start
  // draw while one warms up), then any usable one (any at all in panic).
  const bool panic = state_->panic.load(kRelaxed);
  SlowStartDraw warm;
  const bool reject = !traits_.weighs_slow_start && state_->warming.load(kRelaxed);
  if (reject) {
    warm.lb = &lb;
    if (in.has_hash_key) {
      // The key's own uniform value: a key moves onto a warming endpoint once, as its factor
      // passes the key's value, and stays there.
      warm.key_uniform = static_cast<double>(siphash13(kWarmKey, in.hash_key) >> 11) * 0x1.0p-53;
    }
  }
  const Filter strict(group.members, memo.tried_span(), true, cap, panic, reject ? &warm : nullptr);
  uint32_t i = group.table->pick(in, strict, lb);
  if (i == kNone) {
    const Filter any(group.members, memo.tried_span(), false, 0, panic);
    i = group.table->pick(in, any, lb);
  }
  return i == kNone ? nullptr : &group.members[i];
}

const Group& ClusterBalancer::base_group() const {
  if (levels_.empty()) return *all_;
  const int32_t level = active_level_.load(kRelaxed);
  return level < 0 ? *all_ : *levels_[static_cast<size_t>(level)];
}

// Without a locality decision (no locality block, or a client without a region): the active
// priority level's group, or the whole cluster's; else the locality layer's (locality.cpp).
const EndpointRef* ClusterBalancer::choose(const PickRequest& req, PickMemo& memo,
                                           WorkerCluster& worker, int64_t in_flight,
                                           LocalityOutcome& outcome) const {
  if (locality_ && !req.client_region.empty()) {
    return locality_->choose(*this, req, memo, worker, in_flight, outcome);
  }
  outcome = LocalityOutcome::kNone;
  const PickInput in{req.hash_key, req.has_hash_key, memo.attempt, req.now_ns};
  // Priority levels: the active level's group; the whole cluster's when that has nothing
  // usable now (the tick that moves the level on is up to 100 ms away).
  const Group& group = base_group();
  const EndpointRef* ep = pick_in(group, in, memo, worker, in_flight);
  if (ep == nullptr && &group != all_.get()) ep = pick_in(*all_, in, memo, worker, in_flight);
  return ep;
}

void ClusterBalancer::pick(const PickRequest& req, PickMemo& memo, WorkerCluster& worker,
                           Pick& out) const {
  out = Pick{};
  const config::Cluster& cc = *cluster_.config;
  // max_pending_requests: tries in flight to the cluster beyond it get 503 at once, not a
  // queue. Counted before picking so that concurrent workers cannot overshoot.
  const int64_t others = state_->active_tries.fetch_add(1, kRelaxed);
  if (others >= cc.circuit_breaker.max_pending_requests) {
    state_->active_tries.fetch_sub(1, kRelaxed);
    stats_->counters.add(ClusterStats::kOverflow);
    out.status = 503;
    out.reason = "cluster '" + cc.name + "' is overloaded";
    return;
  }
  // A half-open endpoint takes one request (its trial); a pick that lands on one whose trial
  // another request holds picks again without it (it is then among the tried).
  const EndpointRef* ref = nullptr;
  for (int round = 0; round < 3; ++round) {
    const EndpointRef* candidate = choose(req, memo, worker, others, out.locality);
    if (candidate == nullptr) break;
    if (memo.tried_count < memo.tried.size()) memo.tried[memo.tried_count++] = candidate->index;
    if (candidate->breaker->position.load(kRelaxed) != breaker::Position::kHalfOpen) {
      ref = candidate;
      break;
    }
    if (breaker::claim_trial(*candidate->breaker)) {
      ref = candidate;
      out.trial = true;
      break;
    }
  }
  ++memo.attempt;
  if (ref == nullptr) {
    state_->active_tries.fetch_sub(1, kRelaxed);
    stats_->counters.add(ClusterStats::kNoEndpoint);
    out.status = 503;
    out.reason = out.locality == LocalityOutcome::kDenied
                     ? "no healthy endpoint in region '" + std::string(req.client_region) +
                           "' of cluster '" + cc.name +
                           "', and this route denies cross-region traffic"
                     : "no healthy endpoint in cluster '" + cc.name + "'";
    return;
  }
  if (out.locality == LocalityOutcome::kLocal) {
    stats_->counters.add(ClusterStats::kPicksLocal);
  } else if (out.locality == LocalityOutcome::kFallback) {
    stats_->counters.add(ClusterStats::kPicksFallback);
  }
  ref->load->active_requests.fetch_add(1, kRelaxed);
  if (traits_.uses_latency) {
    ref->load->awaiting_head.fetch_add(1, kRelaxed);
    out.awaiting = true;
  }
  out.ref = ref;
  out.counted = true;
}

void ClusterBalancer::headed(Pick& pick) const {
  if (!pick.awaiting) return;
  pick.awaiting = false;
  pick.ref->load->awaiting_head.fetch_sub(1, kRelaxed);
}

// The same choose() a request makes, on a worker state of its own: the answer a fresh worker
// would give. Only reads the shared state.
PickExplanation ClusterBalancer::explain(const PickRequest& req) const {
  PickExplanation out;
  WorkerCluster worker;
  prepare(worker, 0x5eed);
  PickMemo memo;
  const int64_t in_flight = state_->active_tries.load(kRelaxed);
  out.endpoint = choose(req, memo, worker, in_flight, out.locality);
  const Group* group = &base_group();
  if (locality_ && !req.client_region.empty()) {
    if (const Region* local = locality_->find(req.client_region)) {
      out.region_known = true;
      out.region_healthy = local->group->healthy(locality_->min_healthy());
      out.region = locality_->status_of(*local);
      out.spill = req.cross_region == config::CrossRegion::kDeny ? 0 : local->spill.load(kRelaxed);
      if (locality_->fallback_mode() == config::Fallback::kNearest) {
        if (int32_t n = local->nearest.load(kRelaxed); n >= 0) {
          out.spill_region = locality_->region(n).group->name;
        }
      }
    }
    // The table the chosen endpoint came from: its region's.
    std::string_view region = out.endpoint != nullptr
                                  ? std::string_view(out.endpoint->endpoint->region)
                                  : req.client_region;
    if (const Region* r = locality_->find(region)) group = r->group.get();
  }
  out.group = group == all_.get() ? "" : group->name;
  // The preference order: pick again and again, each time without those already listed.
  WorkerCluster fresh;
  prepare(fresh, 0x5eed);
  auto& lb = fresh.groups[group->slot];
  std::vector<uint32_t> listed;
  const PickInput in{req.hash_key, req.has_hash_key, 0};
  while (listed.size() < group->members.size()) {
    const Filter filter(group->members, listed, true, 0);
    const uint32_t i = group->table->pick(in, filter, lb);
    if (i == kNone) break;
    listed.push_back(group->members[i].index);
    out.order.push_back(&members_[group->members[i].index]);
  }
  return out;
}

// Feeds the circuit breaker and the health score: success is any response below 500.
void ClusterBalancer::report(Pick& pick, bool success, bool local_origin) const {
  if (!pick.counted || pick.reported) return;
  pick.reported = true;
  auto& b = *pick.ref->breaker;
  const auto& cb = cluster_.config->circuit_breaker;
  const bool notify =
      success ? breaker::record_success(b, pick.trial)
              : breaker::record_failure(b, cb.consecutive_failures, pick.trial, local_origin,
                                        cb.split_local_origin, cb.consecutive_local_failures);
  pick.trial = false;
  if (notify && notify_ != nullptr) notify_->notify(owned_.breakers[pick.ref->index]);
}

void ClusterBalancer::connect_result(const Pick& pick, bool connected) const {
  auto& health = *pick.ref->health;
  if (connected) return health::record_connect_success(health);
  if (!health::record_connect_failure(health)) return;
  logs::registry().warn(
      "endpoint {} of cluster '{}' is unhealthy ({} connects by requests failed in a row; "
      "its checks bring it back)",
      pick.ref->endpoint->address_text, cluster_.config->name, health.passive_limit.load(kRelaxed));
}

void ClusterBalancer::release(Pick& pick) const {
  if (!pick.counted) return;
  headed(pick);
  pick.counted = false;
  if (pick.trial) {
    pick.trial = false;
    breaker::abandon_trial(*pick.ref->breaker);  // no outcome: the next request is the trial
  }
  pick.ref->load->active_requests.fetch_sub(1, kRelaxed);
  state_->active_tries.fetch_sub(1, kRelaxed);
}

void ClusterBalancer::accept_load_report(const Pick& pick, std::string_view header,
                                         LoadReportFormat format) const {
  const auto result = receive_load_report(*pick.ref->load, header, format);
  stats_->counters.add(ClusterStats::kLoadReportOk + static_cast<size_t>(result));
}

LoadEstimate ClusterBalancer::load_estimate(const EndpointRef& ref, int64_t now_ns) const {
  return load_model_->model.describe(ref, now_ns);
}

// --- control thread ------------------------------------------------------------------------

void ClusterBalancer::tick() {
  uint32_t usable = 0;
  for (const auto& m : members_) usable += m.usable() ? 1 : 0;
  state_->usable_endpoints.store(usable, kRelaxed);
  if (!levels_.empty()) {
    int32_t active = -1;
    for (size_t i = 0; i < levels_.size(); ++i) {
      levels_[i]->count_usable();
      if (active < 0 && levels_[i]->usable.load(kRelaxed) > 0) active = static_cast<int32_t>(i);
    }
    active_level_.store(active, kRelaxed);
  }
  tick_endpoints(usable);
  if (learns_) tick_learning(steady_now_ns());
  if (locality_) locality_->tick(*cluster_.config->locality);
}

// Adaptive weights (weight_learner.h): a sample per endpoint that answered since the last
// tick, then the learner's update (it fits at most every 500 ms).
void ClusterBalancer::tick_learning(int64_t now_ns) {
  if (!state_->learner) state_->learner = std::make_unique<WeightLearner>();
  const auto& rc = resource_aware::config_of(*cluster_.config);
  const auto& model = load_model_->model;
  for (const auto& m : members_) {
    auto& l = *m.load;
    const uint64_t heads = l.heads.load(kRelaxed);
    const uint64_t us = l.head_us.load(kRelaxed);
    const uint64_t active = l.head_active.load(kRelaxed);
    const uint64_t dh = heads - l.learned_heads;
    if (dh > 0 && heads > l.learned_heads && m.usable()) {
      WeightSample sample;
      sample.at_ns = now_ns;
      model.signals(m, now_ns, &sample.cpu, &sample.memory);
      const double capacity =
          std::max<double>(1, rc.connection_capacity) * static_cast<double>(m.endpoint->weight);
      sample.connections =
          static_cast<double>(active - l.learned_active) / static_cast<double>(dh) / capacity;
      sample.latency_ms = static_cast<double>(us - l.learned_us) / static_cast<double>(dh) / 1e3;
      state_->learner->add(sample);
    }
    l.learned_heads = heads;
    l.learned_us = us;
    l.learned_active = active;
  }
  LearnerConfig lc;
  lc.static_weights = rc.static_weights();
  lc.window_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(rc.learning.window).count();
  lc.min_samples = rc.learning.min_samples;
  lc.smoothing_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(rc.learning.smoothing).count();
  lc.min_weight = rc.learning.min_weight;
  lc.max_weight = rc.learning.max_weight;
  state_->learner->update(now_ns, lc, state_->weights);
}

// The locality layer's spills (README, "Geographic routing" and "Predictive geographic
// routing"), the region latencies and each region's nearest.

// Slow start (README, "Slow start"): an endpoint that enters service (usable now, not at the
// last tick, and usable once before or added after start-up) starts warming; its factor is
// max(min_weight_percent / 100, (t / window)^(1 / aggression)) until the window ends. Panic:
// fewer usable endpoints than panic_threshold percent of the cluster.
void ClusterBalancer::tick_endpoints(uint32_t usable) {
  const config::Cluster& cc = *cluster_.config;
  const int64_t now = steady_now_ns();
  bool warming = false;
  for (const auto& m : members_) {
    auto& l = *m.load;
    const bool u = m.usable();
    double factor = 1;
    if (cc.slow_start) {
      if (u && !l.was_usable && (l.ever_usable || l.warm_on_first_use)) l.warm_since_ns = now;
      if (l.warm_since_ns != 0) {
        const double window = static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(cc.slow_start->window).count());
        const double t = static_cast<double>(now - l.warm_since_ns) / window;
        if (t >= 1) {
          l.warm_since_ns = 0;
        } else {
          factor = std::max(cc.slow_start->min_weight_percent / 100,
                            std::pow(std::max(t, 0.0), 1 / cc.slow_start->aggression));
          factor = std::clamp(factor, 1e-3, 1.0);
          warming = warming || factor < 1;
        }
      }
    } else {
      l.warm_since_ns = 0;
    }
    if (l.warm_factor.load(kRelaxed) != factor) l.warm_factor.store(factor, kRelaxed);
    if (u) l.ever_usable = true;
    l.was_usable = u;
  }
  state_->warming.store(warming, kRelaxed);
  state_->panic.store(
      cc.panic_threshold > 0 &&
          100.0 * usable < cc.panic_threshold * static_cast<double>(members_.size()),
      kRelaxed);
}

void ClusterBalancer::observe_head(Pick& pick, unsigned status, double ms, int64_t now_ns) const {
  headed(pick);
  auto& l = *pick.ref->load;
  l.observe_latency(ms);
  l.observe_response(ms);
  // The latency signal of peak_ewma and resource_aware: a 5xx or a 429 counts as slow (a
  // penalty), whatever it took (README, "Latency-aware balancing").
  if (status >= 500 || status == 429) {
    l.peak.observe_failure(now_ns);
    return;
  }
  l.peak.observe(ms, now_ns);
  if (learns_) {
    l.heads.fetch_add(1, kRelaxed);
    l.head_us.fetch_add(static_cast<uint64_t>(ms * 1e3), kRelaxed);
    l.head_active.fetch_add(
        static_cast<uint64_t>(std::max<int64_t>(l.active_requests.load(kRelaxed), 0)), kRelaxed);
  }
}

std::vector<const EndpointRef*> ClusterBalancer::warm_targets(std::string_view region) const {
  return locality_ ? locality_->warm_targets(region) : std::vector<const EndpointRef*>{};
}

std::vector<RegionStatus> ClusterBalancer::regions() const {
  return locality_ ? locality_->regions() : std::vector<RegionStatus>{};
}

ResourceWeights ClusterBalancer::resource_weights() const { return load_model_->model.weights(); }

}  // namespace switchyard::balancer
