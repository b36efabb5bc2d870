// The front door: admission, the half-open trial, the 503 reasons, and the locality layer
// (regions, zones, spill, fallback, cross-region policies) over any policy.

#include "switchyard/balancer/front_door.h"

#include <gtest/gtest.h>

#include <map>

#include "test_util.h"

namespace switchyard::balancer {
namespace {

// Endpoints "a", "b"...: regions and zones as given ("region/zone").
struct Fixture {
  explicit Fixture(std::vector<std::string> places, const std::string& fallback = "nearest",
                   const std::string& strategy = "round_robin")
      : c(spec(std::move(places), fallback, strategy)) {}
  static testing::Spec spec(std::vector<std::string> places, const std::string& fallback,
                            const std::string& strategy) {
    testing::Spec s;
    s.strategy = strategy;
    s.weights.assign(places.size(), 1);
    s.places = std::move(places);
    s.blocks = "locality: { fallback: " + fallback + " }";
    s.seed = 11;
    return s;
  }
  void set_usable(const std::string& name, bool usable) { c.set_healthy(name[0] - 'a', usable); }
  std::map<std::string, int> picks(int n, const PickRequest& req) { return c.regions(n, req); }
  RegionStatus region(size_t i) { return c.balancer().regions()[i]; }

  testing::Cluster c;
};

PickRequest client(std::string_view region, std::string_view zone = {},
                   config::CrossRegion policy = config::CrossRegion::kAllow) {
  PickRequest req;
  req.client_region = region;
  req.client_zone = zone;
  req.cross_region = policy;
  return req;
}

TEST(FrontDoor, OverflowAtMaxPendingRequests) {
  auto s = testing::weights({1, 1});
  s.blocks = "circuit_breaker: { max_pending_requests: 3 }";
  testing::Cluster c(s);
  for (int i = 0; i < 3; ++i) ASSERT_NE(c.hold(), nullptr);
  EXPECT_EQ(c.pick(), nullptr);
  EXPECT_EQ(c.last_status(), 503u);
  EXPECT_EQ(c.last_reason(), "cluster 'app' is overloaded");
  EXPECT_EQ(c.balancer().stats().counters.value(ClusterStats::kOverflow), 1u);
}

// A half-open endpoint takes one request, its trial; others go elsewhere until the trial's
// outcome closes the breaker.
TEST(FrontDoor, HalfOpenTakesOneTrial) {
  testing::Cluster c(testing::weights({1, 1}));
  c.breaker(0).position = breaker::Position::kHalfOpen;
  // Round robin reaches "a" within two picks: that pick claims the trial.
  Pick trial;
  for (int i = 0; i < 2 && !trial.trial; ++i) {
    PickMemo memo;
    c.balancer().pick({}, memo, c.worker(), trial);
    ASSERT_NE(trial.ref, nullptr);
    if (!trial.trial) c.balancer().release(trial);
  }
  ASSERT_TRUE(trial.trial);
  EXPECT_EQ(trial.ref->index, 0u);
  EXPECT_EQ(c.breaker(0).position.load(), breaker::Position::kTrial);
  EXPECT_EQ(c.sequence(4), "bbbb");  // the trial is held: nobody else goes there
  c.balancer().report(trial, true);
  c.balancer().release(trial);
  EXPECT_EQ(c.breaker(0).position.load(), breaker::Position::kClosed);
  auto h = c.histogram(10);
  EXPECT_EQ(h["a"], 5);
}

// A trial released without an outcome (the client left) is given back: the next pick holds it.
TEST(FrontDoor, AbandonedTrialIsGivenBack) {
  testing::Cluster c(testing::weights({1}));
  c.breaker(0).position = breaker::Position::kHalfOpen;
  Pick p;
  PickMemo memo;
  c.balancer().pick({}, memo, c.worker(), p);
  ASSERT_TRUE(p.trial);
  c.balancer().release(p);
  EXPECT_EQ(c.breaker(0).position.load(), breaker::Position::kHalfOpen);
  EXPECT_EQ(c.load(0).active_requests.load(), 0);
}

// Failures count towards the breaker once per pick, and the in-flight counts return to zero.
TEST(FrontDoor, ReportOnceAndRelease) {
  testing::Cluster c(testing::weights({1}));
  Pick p;
  PickMemo memo;
  c.balancer().pick({}, memo, c.worker(), p);
  EXPECT_EQ(c.load(0).active_requests.load(), 1);
  c.balancer().report(p, false);
  c.balancer().report(p, false);
  EXPECT_EQ(c.breaker(0).failures.load(), 1u);
  c.balancer().release(p);
  c.balancer().release(p);
  EXPECT_EQ(c.load(0).active_requests.load(), 0);
}

TEST(Locality, TrafficStaysInTheClientsRegion) {
  Fixture f({"east", "east", "west", "west"});
  EXPECT_EQ(f.picks(100, client("east")), (std::map<std::string, int>{{"east", 100}}));
  EXPECT_EQ(f.picks(100, client("west")), (std::map<std::string, int>{{"west", 100}}));
  LocalityOutcome outcome{};
  f.c.pick(client("east"), nullptr, &outcome);
  EXPECT_EQ(outcome, LocalityOutcome::kLocal);
  // No client region: the whole cluster, no locality.
  auto all = f.picks(100, client(""));
  EXPECT_EQ(all["east"] + all["west"], 100);
  EXPECT_GT(all["west"], 0);
}

TEST(Locality, SpillFollowsTheDeficitAndFallsGradually) {
  Fixture f({"east", "east", "east", "east", "west", "west"});
  f.set_usable("a", false);  // 3 of 4: above min_healthy_fraction 0.5
  EXPECT_EQ(f.picks(200, client("east"))["east"], 200);
  f.set_usable("b", false);
  f.set_usable("c", false);  // 1 of 4: deficit (0.5 - 0.25) / 0.5 = 0.5
  EXPECT_DOUBLE_EQ(f.region(0).spill, 0.5);
  auto split = f.picks(4000, client("east"));
  EXPECT_NEAR(split["west"], 2000, 200);
  EXPECT_EQ(split["east"] + split["west"], 4000);
  f.set_usable("d", false);  // nothing usable: everything spills
  EXPECT_DOUBLE_EQ(f.region(0).spill, 1.0);
  EXPECT_EQ(f.picks(100, client("east"))["west"], 100);
  for (auto name : {"a", "b", "c", "d"}) f.set_usable(name, true);  // ticks four times
  // Back to healthy: the spill falls by 0.05 per tick, not at once.
  EXPECT_NEAR(f.region(0).spill, 0.8, 1e-9);
  for (int i = 0; i < 16; ++i) f.c.tick();
  EXPECT_DOUBLE_EQ(f.region(0).spill, 0.0);
}

TEST(Locality, NearestFallbackIsTheLowestMeasuredLatency) {
  Fixture f({"east", "mid", "far"});
  f.c.load(1).observe_latency(40);
  f.c.load(2).observe_latency(10);  // "far" is named far but answers fastest
  f.c.tick();
  f.set_usable("a", false);
  EXPECT_EQ(f.picks(50, client("east")), (std::map<std::string, int>{{"far", 50}}));
  EXPECT_EQ(f.region(0).name, "east");  // regions sort by name
  EXPECT_EQ(f.region(0).nearest, "far");
  // An unhealthy region is not a fallback while a healthy one exists.
  f.set_usable("c", false);
  EXPECT_EQ(f.picks(50, client("east")), (std::map<std::string, int>{{"mid", 50}}));
  LocalityOutcome outcome{};
  f.c.pick(client("east"), nullptr, &outcome);
  EXPECT_EQ(outcome, LocalityOutcome::kFallback);
  // A client from a region without endpoints goes to the nearest healthy region.
  f.set_usable("a", true);
  f.set_usable("c", true);
  EXPECT_EQ(f.picks(50, client("mars")), (std::map<std::string, int>{{"far", 50}}));
}

TEST(Locality, CrossRegionPolicies) {
  Fixture f({"east", "east", "east", "east", "west"});
  // failover_only: 3 of 4 local endpoints usable (0.75 >= min_healthy_fraction 0.5): the
  // region is healthy and keeps all of its traffic.
  f.set_usable("a", false);
  EXPECT_EQ(f.picks(200, client("east", {}, config::CrossRegion::kFailoverOnly))["east"], 200);
  // 1 of 4 (0.25 < 0.5): the region counts as unhealthy and is left as a whole, although an
  // endpoint there is still usable; allow spills only the deficit's share.
  f.set_usable("b", false);
  f.set_usable("c", false);
  EXPECT_EQ(f.picks(200, client("east", {}, config::CrossRegion::kFailoverOnly))["west"], 200);
  auto allow = f.picks(400, client("east"));
  EXPECT_GT(allow["east"], 100);  // spill (0.5 - 0.25) / 0.5 = a half
  EXPECT_GT(allow["west"], 100);
  // deny: never leaves; nothing usable is a refusal, and the 503 says why.
  f.set_usable("d", false);
  LocalityOutcome outcome{};
  EXPECT_EQ(f.c.pick(client("east", {}, config::CrossRegion::kDeny), nullptr, &outcome), nullptr);
  EXPECT_EQ(outcome, LocalityOutcome::kDenied);
  EXPECT_EQ(f.c.last_reason(),
            "no healthy endpoint in region 'east' of cluster 'app', and this route denies "
            "cross-region traffic");
}

// A region that recovered comes back to failover_only gradually: its spill falls by 0.05 per
// tick, and it gets its traffic back only once that reached 0 (no swinging on a flap).
TEST(Locality, FailoverOnlyReturnsAfterTheHysteresis) {
  Fixture f({"east", "east", "west"});
  f.set_usable("a", false);  // 0.5: healthy at the default 0.5
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["east"], 50);
  f.set_usable("b", false);  // nothing usable: spill 1
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["west"], 50);
  f.set_usable("a", true);
  f.set_usable("b", true);  // healthy again, but the spill falls gradually
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["west"], 50);
  for (int i = 0; i < 25; ++i) f.c.tick();
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["east"], 50);
}

TEST(Locality, FallbackAnyAndNone) {
  Fixture any({"east", "west", "north"}, "any");
  any.set_usable("a", false);
  auto spread = any.picks(300, client("east"));
  EXPECT_GT(spread["west"], 50);
  EXPECT_GT(spread["north"], 50);
  Fixture none({"east", "west"}, "none");
  none.set_usable("a", false);
  EXPECT_EQ(none.picks(10, client("east")), (std::map<std::string, int>{{"-", 10}}));
}

TEST(Locality, ZonePreferenceInsideTheRegion) {
  Fixture f({"east/1a", "east/1a", "east/1b", "west/2a"});
  std::map<std::string, int> names;
  for (int i = 0; i < 100; ++i) ++names[testing::Cluster::name(f.c.pick(client("east", "1b")))];
  EXPECT_EQ(names, (std::map<std::string, int>{{"c", 100}}));
  f.set_usable("c", false);  // its zone is down: the rest of the region
  names.clear();
  for (int i = 0; i < 100; ++i) ++names[testing::Cluster::name(f.c.pick(client("east", "1b")))];
  EXPECT_EQ(names["a"] + names["b"], 100);
}

// resource_aware compares scores within the chosen region only: a loaded local endpoint still
// wins over an idle one in another region.
TEST(Locality, ResourceAwareScoresWithinTheRegion) {
  Fixture f({"east", "east", "west"}, "nearest", "resource_aware");
  auto now = steady_now_ns();
  LoadReport busy, idle;
  busy.cpu = 0.9;
  busy.memory = 0.9;
  idle.cpu = 0.0;
  idle.memory = 0.0;
  apply_load_report(f.c.load(0), busy, now);
  apply_load_report(f.c.load(1), busy, now);
  apply_load_report(f.c.load(2), idle, now);
  f.c.load(1).active_requests = 50;
  // Shares are by headroom inside the region: a (no requests in flight) gets most, b (50 in
  // flight) the rest, the idle west endpoint none.
  std::map<std::string, int> names;
  for (int i = 0; i < 200; ++i) ++names[testing::Cluster::name(f.c.pick(client("east")))];
  EXPECT_EQ(names["c"], 0);
  EXPECT_GT(names["a"], 2 * names["b"]);
}

// Bounded load inside a region counts the region's requests in flight: with the cluster's
// average, every endpoint of a busy region would be over its cap and the hot key would stay.
TEST(Locality, BoundedLoadCountsTheRegion) {
  testing::Spec s;
  s.strategy = "consistent_hash";
  for (int i = 0; i < 10; ++i) {
    s.weights.push_back(1);
    s.places.push_back(i < 2 ? "east" : "west");
    s.addresses.push_back("10.0.0." + std::to_string(i + 1) + ":80");
  }
  s.blocks = "hash: { key: \"header:K\", bounded_load: 1.25 }\n    locality: {}";
  s.seed = 5;
  testing::Cluster c(s);
  auto req = client("east");
  req.hash_key = "hot";
  req.has_hash_key = true;
  const EndpointRef* owner = c.pick(req);
  ASSERT_EQ(owner->endpoint->region, "east");
  const size_t other = owner->index == 0 ? 1 : 0;
  // 13 in flight, all in east: cap ceil(1.25 * 14 / 2) = 9.
  c.load(owner->index).active_requests = 10;
  c.load(other).active_requests = 3;
  EXPECT_EQ(c.pick(req)->index, other);
}

TEST(Locality, WarmTargetsAreTheNearestRegionsUsableEndpoints) {
  Fixture f({"east", "west", "west", "far"});
  f.c.load(1).observe_latency(5);
  f.c.load(2).observe_latency(5);
  f.c.load(3).observe_latency(50);
  f.c.tick();
  f.set_usable("c", false);
  auto targets = f.c.balancer().warm_targets("east");
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0]->index, 1u);
  EXPECT_TRUE(f.c.balancer().warm_targets("nowhere").empty());
}

// --- slow start and panic -------------------------------------------------------------------

testing::Spec warming_spec(const std::string& strategy, size_t n, const std::string& extra = "") {
  auto s = testing::weights(std::vector<uint32_t>(n, 1), strategy);
  s.blocks = "slow_start: { window: 10s, aggression: 1.0, min_weight_percent: 10 }" + extra;
  return s;
}

// Puts endpoint i a fraction t into its window (as if it entered service t x 10 s ago).
void warm(testing::Cluster& c, size_t i, double t) {
  c.load(i).ever_usable = true;
  c.load(i).was_usable = true;
  c.load(i).warm_since_ns = steady_now_ns() - static_cast<int64_t>(t * 10e9);
  c.tick();
}

// The factor is max(10%, t / window) with aggression 1; the warming endpoint's round-robin
// share is what a weight of weight x factor would give: p f / (1 - p + p f), p = 1/3.
TEST(SlowStart, RoundRobinShareFollowsTheRamp) {
  for (double t : {0.0, 0.25, 0.5, 0.8}) {
    auto sp = warming_spec("round_robin", 3);
    sp.seed = 5;
    testing::Cluster c(sp);
    warm(c, 2, t);
    const double f = std::max(0.1, t);
    EXPECT_NEAR(c.load(2).warm_factor.load(), f, 0.01) << t;
    const double want = (f / 3) / (1 - 1.0 / 3 + f / 3);
    auto picks = c.histogram(6000);
    EXPECT_NEAR(picks["c"] / 6000.0, want, want * 0.1 + 0.005) << t;
  }
}

// Aggression bends the curve: (t / window)^(1 / aggression).
TEST(SlowStart, AggressionAndTheEndOfTheWindow) {
  auto sp = testing::weights({1, 1}, "random");
  sp.blocks = "slow_start: { window: 10s, aggression: 2.0 }";
  testing::Cluster c(sp);
  warm(c, 1, 0.25);
  EXPECT_NEAR(c.load(1).warm_factor.load(), 0.5, 0.01);  // sqrt(0.25)
  warm(c, 1, 1.01);  // past the window: full weight, and no longer warming
  EXPECT_DOUBLE_EQ(c.load(1).warm_factor.load(), 1.0);
  EXPECT_EQ(c.load(1).warm_since_ns, 0);
}

// An endpoint enters service when it turns usable after having been usable before (back from
// failed checks or an ejection), or the first time if it was added after start-up.
TEST(SlowStart, EnteringServiceStartsTheRamp) {
  testing::Cluster c(warming_spec("round_robin", 2));
  c.tick();
  EXPECT_DOUBLE_EQ(c.load(0).warm_factor.load(), 1.0);  // start-up: no ramp
  c.set_healthy(0, false);
  c.set_healthy(0, true);  // back from failed checks
  EXPECT_NEAR(c.load(0).warm_factor.load(), 0.1, 0.01);
  c.breaker(1).position = breaker::Position::kOpen;
  c.tick();
  c.breaker(1).position = breaker::Position::kClosed;  // back from an ejection
  c.tick();
  EXPECT_NEAR(c.load(1).warm_factor.load(), 0.1, 0.01);
}

// A hashing table moves a key onto a warming endpoint once, as the factor passes the key's
// value, and the key stays: the set of keys it owns only grows.
TEST(SlowStart, HashedKeysMoveOnceAndStay) {
  auto sp = warming_spec("maglev", 4, "\n    hash: { key: \"header:K\" }");
  testing::Cluster c(sp);
  std::vector<std::string> keys;
  for (int i = 0; i < 2000; ++i) keys.push_back("user-" + std::to_string(i));
  auto owners = [&] {
    std::vector<std::string> out;
    for (const auto& k : keys) {
      PickRequest req;
      req.hash_key = k;
      req.has_hash_key = true;
      out.push_back(testing::Cluster::name(c.pick(req)));
    }
    return out;
  };
  const auto full = owners();  // nothing warming
  std::vector<std::string> before;
  size_t owned_before = 0;
  for (double t : {0.0, 0.3, 0.6, 0.9}) {
    warm(c, 3, t);
    auto now = owners();
    size_t owned = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (now[i] == "d") {
        ++owned;
        EXPECT_EQ(full[i], "d");  // only its own keys
        if (!before.empty() && before[i] == "d") continue;
      } else {
        EXPECT_EQ(now[i], full[i] == "d" ? now[i] : full[i]);  // others' keys never move
        if (!before.empty()) {
          EXPECT_NE(before[i], "d");  // a key it had stays with it
        }
      }
    }
    EXPECT_GE(owned, owned_before);
    owned_before = owned;
    before = now;
  }
}

// Least request weighs the warming endpoint by weight x factor: at 10% an idle newcomer beats
// a peer only while that peer holds 10x its load.
TEST(SlowStart, LeastRequestUsesTheEffectiveWeight) {
  testing::Cluster c(warming_spec("least_request", 2));
  warm(c, 1, 0.0);  // factor 0.1
  c.load(0).active_requests = 5;
  c.load(1).active_requests = 1;  // 1 / 0.1 = 10 > 5: a
  EXPECT_EQ(c.histogram(100)["a"], 100);
  c.load(0).active_requests = 20;  // 10 < 20: b
  EXPECT_EQ(c.histogram(100)["b"], 100);
}

// Below panic_threshold the cluster balances over every endpoint, usable or not.
TEST(Panic, BelowTheThresholdEveryEndpointIsAcceptable) {
  auto sp = testing::weights({1, 1, 1, 1}, "round_robin");
  sp.blocks = "panic_threshold: 50";
  testing::Cluster c(sp);
  c.set_healthy(0, false);  // 3 of 4 usable: 75%, no panic
  EXPECT_EQ(c.histogram(400)["a"], 0);
  c.set_healthy(1, false);  // 2 of 4: 50%, still not below
  EXPECT_EQ(c.histogram(400)["a"], 0);
  c.set_healthy(2, false);  // 1 of 4: panic
  auto picks = c.histogram(400);
  EXPECT_NEAR(picks["a"], 100, 10);
  EXPECT_NEAR(picks["d"], 100, 10);
  c.set_healthy(2, true);
  EXPECT_EQ(c.histogram(400)["a"], 0);
}

}  // namespace
}  // namespace switchyard::balancer
