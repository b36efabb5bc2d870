#include "switchyard/balancer/front_door.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "policies/resource_aware/load_model.h"
#include "region_forecast.h"
#include "switchyard/common/logging.h"
#include "switchyard/common/siphash.h"
#include "weight_learner.h"

namespace switchyard::balancer {
namespace {

constexpr double kSpillFallPerTick = 0.05;
// The key of the hash that gives a hash key its slow-start value (any fixed key: it only has to
// spread keys evenly over [0, 1) independently of the ring's own hash).
const SipKey kWarmKey = SipKey::from_seed("switchyard slow start");
constexpr auto kRelaxed = std::memory_order_relaxed;

bool was_tried(const PickMemo& memo, uint32_t index) {
  for (uint32_t i = 0; i < memo.tried_count; ++i) {
    if (memo.tried[i] == index) return true;
  }
  return false;
}

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

// A set of members with its own table (a copy of the cluster's EndpointRef entries: same
// identity and state, positions of their own).
struct ClusterBalancer::Group {
  std::string name;
  Members members;
  std::unique_ptr<PolicyTable> table;
  size_t slot = 0;  // its WorkerLbState in WorkerCluster::groups
  std::atomic<uint32_t> usable{0};

  Group(std::string n, const config::Cluster& cluster, const Policy& policy,
        const ClusterState& state, Members m, size_t s, ClusterStats* timed)
      : name(std::move(n)), members(std::move(m)), slot(s) {
    auto started = std::chrono::steady_clock::now();
    table = policy.build(cluster, members, state);
    if (timed != nullptr) {
      timed->ring_rebuild.observe_ns(
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count()));
    }
    usable = static_cast<uint32_t>(members.size());
  }
  bool healthy(double min_fraction) const {
    uint32_t u = usable.load(kRelaxed);
    return u > 0 && u >= min_fraction * static_cast<double>(members.size());
  }
  void count_usable() {
    uint32_t u = 0;
    for (const auto& m : members) u += m.usable() ? 1 : 0;
    usable.store(u, kRelaxed);
  }
  int64_t in_flight() const {
    int64_t n = 0;
    for (const auto& m : members) n += m.load->active_requests.load(kRelaxed);
    return n;
  }
};

struct ClusterBalancer::Region {
  std::unique_ptr<Group> group;
  std::vector<std::unique_ptr<Group>> zones;
  std::atomic<double> spill{0};
  std::atomic<double> latency_ms{-1};
  std::atomic<int32_t> nearest{-1};   // index in regions_
  std::atomic<double> predicted{-1};  // predicted healthy fraction (-1: prediction off)
  std::atomic<uint8_t> cause{0};      // 0 none, 1 unhealthy, 2 predicted
  // With prediction on, the figures regions() shows, summarised by the control thread (the
  // endpoints' trend state is its own): medians over the endpoints, the mean error share, the
  // endpoints predicted to fail (health < 0.5) or not usable.
  std::atomic<double> baseline_ms{-1};
  std::atomic<double> trend_ms_per_s{0};
  std::atomic<double> predicted_ms{-1};
  std::atomic<double> error_rate{0};
  std::atomic<uint32_t> failing{0};
  bool was_healthy = false;  // control thread: hysteresis only after a first healthy
  // A region that is usable-healthy and, with prediction on, predicted so.
  bool sound(double min_healthy) const {
    const double p = predicted.load(kRelaxed);
    return group->healthy(min_healthy) && (p < 0 || p >= min_healthy);
  }
};

ClusterBalancer::ClusterBalancer(const registry::ClusterSnapshot& cluster, const Policy& policy,
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
  locality_ = true;
  predictive_ = cc.locality->predictive.enabled;
  min_healthy_ = cc.locality->min_healthy_fraction;
  fallback_ = cc.locality->fallback;
  zones_ = traits_.zones;
  std::map<std::string, Members> by_region;
  for (const auto& m : members_) by_region[m.endpoint->region].push_back(m);
  for (auto& [name, refs] : by_region) {
    auto region = std::make_unique<Region>();
    if (zones_) {
      std::map<std::string, Members> by_zone;
      for (const auto& m : refs) {
        if (!m.endpoint->zone.empty()) by_zone[m.endpoint->zone].push_back(m);
      }
      for (auto& [zone, zrefs] : by_zone) {
        region->zones.push_back(std::make_unique<Group>(zone, cc, policy, *state_, std::move(zrefs),
                                                        groups_++, nullptr));
      }
    }
    region->group =
        std::make_unique<Group>(name, cc, policy, *state_, std::move(refs), groups_++, nullptr);
    regions_.push_back(std::move(region));
  }
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
  for (const auto& r : regions_) {
    for (const auto& z : r->zones) add(*z);
    add(*r->group);
  }
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

const ClusterBalancer::Group& ClusterBalancer::base_group() const {
  if (levels_.empty()) return *all_;
  const int32_t level = active_level_.load(kRelaxed);
  return level < 0 ? *all_ : *levels_[static_cast<size_t>(level)];
}

const ClusterBalancer::Region* ClusterBalancer::find(std::string_view name) const {
  for (const auto& r : regions_) {
    if (r->group->name == name) return r.get();
  }
  return nullptr;
}

// The locality layer (README, "Geographic routing"): the client's region while it has at
// least min_healthy_fraction of its endpoints usable; below that a share of its traffic equal
// to the deficit spills to the fallback (allow), or all of it does while the region counts as
// unhealthy (failover_only); deny never leaves it.
const EndpointRef* ClusterBalancer::choose(const PickRequest& req, PickMemo& memo,
                                           WorkerCluster& worker, int64_t in_flight,
                                           LocalityOutcome& outcome) const {
  const PickInput in{req.hash_key, req.has_hash_key, memo.attempt, req.now_ns};
  outcome = LocalityOutcome::kNone;
  if (!locality_ || req.client_region.empty()) {
    // Priority levels: the active level's group; the whole cluster's when that has nothing
    // usable now (the tick that moves the level on is up to 100 ms away).
    const Group& group = base_group();
    const EndpointRef* ep = pick_in(group, in, memo, worker, in_flight);
    if (ep == nullptr && &group != all_.get()) ep = pick_in(*all_, in, memo, worker, in_flight);
    return ep;
  }
  const Region* local = find(req.client_region);
  const uint32_t usable = local ? local->group->usable.load(kRelaxed) : 0;
  bool stay = usable > 0;
  if (stay && req.cross_region != config::CrossRegion::kDeny) {
    // The spill's slow fall is the hysteresis that keeps a flapping endpoint from swinging the
    // region back and forth.
    const double spill = local->spill.load(kRelaxed);
    stay = req.cross_region == config::CrossRegion::kAllow
               ? spill <= 0 || worker.groups[all_->slot].uniform() >= spill
               : spill <= 0;
  }
  if (stay || req.cross_region == config::CrossRegion::kDeny) {
    if (local != nullptr) {
      if (zones_ && !req.client_zone.empty()) {
        for (const auto& zone : local->zones) {
          if (zone->name != req.client_zone || !zone->healthy(min_healthy_)) continue;
          if (const EndpointRef* ep = pick_in(*zone, in, memo, worker, in_flight)) {
            outcome = LocalityOutcome::kLocal;
            return ep;
          }
        }
      }
      if (const EndpointRef* ep = pick_in(*local->group, in, memo, worker, in_flight)) {
        // A retry whose every local endpoint was tried already goes to the fallback when it
        // may, rather than back to an endpoint that just failed it.
        if (was_tried(memo, ep->index) && req.cross_region != config::CrossRegion::kDeny) {
          LocalityOutcome other_outcome;
          if (const EndpointRef* other =
                  fallback(local, req, memo, worker, in_flight, other_outcome);
              other != nullptr && !was_tried(memo, other->index)) {
            outcome = other_outcome;
            return other;
          }
        }
        outcome = LocalityOutcome::kLocal;
        return ep;
      }
    }
    if (req.cross_region == config::CrossRegion::kDeny) {
      outcome = LocalityOutcome::kDenied;
      return nullptr;
    }
  }
  return fallback(local, req, memo, worker, in_flight, outcome);
}

const EndpointRef* ClusterBalancer::fallback(const Region* local, const PickRequest& req,
                                             PickMemo& memo, WorkerCluster& worker,
                                             int64_t in_flight, LocalityOutcome& outcome) const {
  const PickInput in{req.hash_key, req.has_hash_key, memo.attempt, req.now_ns};
  const EndpointRef* ep = nullptr;
  switch (fallback_) {
    case config::Fallback::kNone:
      return nullptr;
    case config::Fallback::kAny:
      ep = pick_in(*all_, in, memo, worker, in_flight);
      break;
    case config::Fallback::kNearest: {
      int32_t nearest = -1;
      if (local != nullptr) {
        nearest = local->nearest.load(kRelaxed);
      } else {
        // A client region without endpoints: the nearest region to this proxy.
        double best = -1;
        for (size_t i = 0; i < regions_.size(); ++i) {
          const auto& r = *regions_[i];
          double l = r.latency_ms.load(kRelaxed);
          if (!r.sound(min_healthy_)) continue;
          if (nearest < 0 || (l >= 0 && (best < 0 || l < best))) {
            nearest = static_cast<int32_t>(i);
            best = l;
          }
        }
      }
      if (nearest >= 0) ep = pick_in(*regions_[nearest]->group, in, memo, worker, in_flight);
      if (ep == nullptr) ep = pick_in(*all_, in, memo, worker, in_flight);  // anywhere usable
      break;
    }
  }
  if (ep != nullptr) {
    // all_ may land back in the client's own region (its last usable endpoints).
    outcome = ep->endpoint->region == req.client_region ? LocalityOutcome::kLocal
                                                        : LocalityOutcome::kFallback;
  }
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
    if (const Region* local = find(req.client_region)) {
      out.region_known = true;
      out.region_healthy = local->group->healthy(min_healthy_);
      out.region = status_of(*local);
      out.spill = req.cross_region == config::CrossRegion::kDeny ? 0 : local->spill.load(kRelaxed);
      if (fallback_ == config::Fallback::kNearest) {
        if (int32_t n = local->nearest.load(kRelaxed); n >= 0) {
          out.spill_region = regions_[n]->group->name;
        }
      }
    }
    // The table the chosen endpoint came from: its region's.
    std::string_view region = out.endpoint != nullptr
                                  ? std::string_view(out.endpoint->endpoint->region)
                                  : req.client_region;
    if (const Region* r = find(region)) group = r->group.get();
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
  if (locality_) tick_regions();
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
void ClusterBalancer::tick_regions() {
  const auto& prediction = cluster_.config->locality->predictive;
  const double recovery_ticks = std::max(
      1.0, std::chrono::duration<double>(prediction.recovery).count() / forecast::kTickSeconds);
  for (auto& r : regions_) {
    r->group->count_usable();
    for (auto& z : r->zones) z->count_usable();
    const double total = static_cast<double>(r->group->members.size());
    const double fraction = r->group->usable.load(kRelaxed) / total;
    const double target = forecast::shortfall(fraction, min_healthy_);
    double predicted_target = 0;
    if (predictive_) {
      double healthy = 0;
      for (const auto& m : r->group->members) {
        auto& t = m.load->trend;
        forecast::observe(t, m.load->latency_ms.load(kRelaxed), m.breaker->successes.load(kRelaxed),
                          m.breaker->failures.load(kRelaxed), prediction);
        if (m.usable()) healthy += t.health;
      }
      const double p = healthy / total;
      r->predicted.store(p, kRelaxed);
      summarise_trends(*r);
      predicted_target = forecast::shortfall(p, min_healthy_);
    } else {
      r->predicted.store(-1, kRelaxed);
    }
    // Until the region has been healthy once (start-up: its endpoints await their first
    // checks) the spill follows the target directly; afterwards it falls gradually: the
    // hysteresis that keeps a flapping endpoint from swinging the region back and forth (a
    // predicted spill falls slower still, over `recovery`).
    const double spill = r->spill.load(kRelaxed);
    const double wanted = std::max(target, predicted_target);
    double next = wanted;
    if (r->was_healthy && wanted < spill) {
      const bool predicted = r->cause.load(kRelaxed) == 2;
      next = std::max(wanted, spill - (predicted ? 1.0 / recovery_ticks : kSpillFallPerTick));
    }
    r->spill.store(next, kRelaxed);
    if (next <= 0) {
      r->cause.store(0, kRelaxed);
    } else if (wanted > 0) {
      r->cause.store(target >= predicted_target ? 1 : 2, kRelaxed);
    }
    if (fraction >= min_healthy_ && fraction > 0) r->was_healthy = true;
    double sum = 0;
    int n = 0;
    for (const auto& m : r->group->members) {
      double l = m.load->latency_ms.load(kRelaxed);
      if (l >= 0 && m.usable()) {
        sum += l;
        ++n;
      }
    }
    r->latency_ms.store(n > 0 ? sum / n : -1, kRelaxed);
  }
  // Nearest: the healthy other region with the lowest latency (unmeasured ones last); if no
  // other region is healthy, any usable one.
  for (size_t i = 0; i < regions_.size(); ++i) {
    int32_t best = -1;
    auto better = [&](size_t j) {
      if (best < 0) return true;
      const auto& a = *regions_[j];
      const auto& b = *regions_[best];
      bool ah = a.sound(min_healthy_), bh = b.sound(min_healthy_);
      if (ah != bh) return ah;
      double la = a.latency_ms.load(kRelaxed);
      double lb = b.latency_ms.load(kRelaxed);
      if ((la < 0) != (lb < 0)) return lb < 0;
      return la < lb;
    };
    for (size_t j = 0; j < regions_.size(); ++j) {
      if (j == i || regions_[j]->group->usable.load(kRelaxed) == 0) continue;
      if (better(j)) best = static_cast<int32_t>(j);
    }
    regions_[i]->nearest.store(best, kRelaxed);
  }
}

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

std::vector<const EndpointRef*> ClusterBalancer::warm_targets(std::string_view region) const {
  std::vector<const EndpointRef*> out;
  const Region* local = find(region);
  if (local == nullptr || fallback_ != config::Fallback::kNearest) return out;
  int32_t nearest = local->nearest.load(kRelaxed);
  if (nearest < 0) return out;
  for (const auto& m : regions_[nearest]->group->members) {
    if (m.usable()) out.push_back(&m);
  }
  return out;
}

// Control thread: the region's prediction figures from its endpoints' trends, for regions().
void ClusterBalancer::summarise_trends(Region& r) {
  std::vector<double> baseline, trend, predicted;
  double errors = 0;
  uint32_t failing = 0;
  for (const auto& m : r.group->members) {
    const auto& t = m.load->trend;
    if (t.baseline_ms >= 0) baseline.push_back(t.baseline_ms);
    trend.push_back(t.slope_ms_per_s);
    if (t.predicted_ms >= 0) predicted.push_back(t.predicted_ms);
    errors += t.error_rate;
    if (!m.usable() || t.health < 0.5) ++failing;
  }
  auto median = [](std::vector<double>& v) {
    if (v.empty()) return -1.0;
    std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  r.baseline_ms.store(median(baseline), kRelaxed);
  r.trend_ms_per_s.store(trend.empty() ? 0 : median(trend), kRelaxed);
  r.predicted_ms.store(median(predicted), kRelaxed);
  r.error_rate.store(
      r.group->members.empty() ? 0 : errors / static_cast<double>(r.group->members.size()),
      kRelaxed);
  r.failing.store(failing, kRelaxed);
}

RegionStatus ClusterBalancer::status_of(const Region& r) const {
  RegionStatus info;
  info.name = r.group->name;
  info.endpoints = static_cast<uint32_t>(r.group->members.size());
  info.usable = r.group->usable.load(kRelaxed);
  info.healthy = r.group->healthy(min_healthy_);
  info.spill = r.spill.load(kRelaxed);
  info.latency_ms = r.latency_ms.load(kRelaxed);
  const int32_t n = r.nearest.load(kRelaxed);
  if (n >= 0) info.nearest = regions_[n]->group->name;
  const uint8_t cause = r.cause.load(kRelaxed);
  info.spill_cause = info.spill <= 0 ? "" : cause == 2 ? "predicted" : "unhealthy";
  info.predicted_healthy = r.predicted.load(kRelaxed);
  if (info.predicted_healthy >= 0) {
    info.baseline_ms = r.baseline_ms.load(kRelaxed);
    info.trend_ms_per_s = r.trend_ms_per_s.load(kRelaxed);
    info.predicted_ms = r.predicted_ms.load(kRelaxed);
    info.error_rate = r.error_rate.load(kRelaxed);
    info.failing = r.failing.load(kRelaxed);
  }
  return info;
}

std::vector<RegionStatus> ClusterBalancer::regions() const {
  std::vector<RegionStatus> out;
  for (const auto& r : regions_) out.push_back(status_of(*r));
  return out;
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

ResourceWeights ClusterBalancer::resource_weights() const { return load_model_->model.weights(); }

}  // namespace switchyard::balancer
