#include "switchyard/balancer/locality.h"

#include <gtest/gtest.h>

#include <map>

#include "switchyard/balancer/resource_aware.h"
#include "test_util.h"

namespace switchyard::balancer {
namespace {

// Endpoints "a".."": regions and zones as given ("region/zone").
struct Fixture {
  explicit Fixture(std::vector<std::string> places,
                   config::Fallback fallback = config::Fallback::kNearest) {
    endpoints = testing::endpoints(std::vector<uint32_t>(places.size(), 1));
    for (size_t i = 0; i < places.size(); ++i) {
      auto slash = places[i].find('/');
      endpoints[i].region = places[i].substr(0, slash);
      if (slash != std::string::npos) endpoints[i].zone = places[i].substr(slash + 1);
    }
    cluster.strategy = config::Strategy::kRoundRobin;
    cluster.locality = config::Locality{};
    cluster.locality->fallback = fallback;
    strategy = build_strategy(cluster, endpoints);
    locality = dynamic_cast<Locality*>(strategy.get());
    lb = std::make_unique<WorkerLbState>(endpoints.size(), 11);
    strategy->prepare(*lb);
  }
  void set_usable(const std::string& name, bool usable) {
    for (auto& ep : endpoints) {
      if (ep.address_text == name) ep.state->healthy = usable;
    }
    strategy->tick();
  }
  // n picks for a client: {region of the endpoint (or "-"): count}.
  std::map<std::string, int> picks(int n, PickContext ctx) {
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
      const Endpoint* ep = strategy->pick(ctx, *lb);
      ++out[ep ? ep->region : "-"];
    }
    return out;
  }
  std::vector<Endpoint> endpoints;
  config::Cluster cluster;
  std::unique_ptr<Strategy> strategy;
  Locality* locality = nullptr;
  std::unique_ptr<WorkerLbState> lb;
};

PickContext client(std::string_view region, std::string_view zone = {},
                   config::CrossRegion policy = config::CrossRegion::kAllow) {
  PickContext ctx;
  ctx.client_region = region;
  ctx.client_zone = zone;
  ctx.cross_region = policy;
  return ctx;
}

TEST(Locality, TrafficStaysInTheClientsRegion) {
  Fixture f({"east", "east", "west", "west"});
  f.strategy->tick();
  EXPECT_EQ(f.picks(100, client("east")), (std::map<std::string, int>{{"east", 100}}));
  EXPECT_EQ(f.picks(100, client("west")), (std::map<std::string, int>{{"west", 100}}));
  auto ctx = client("east");
  f.strategy->pick(ctx, *f.lb);
  EXPECT_EQ(ctx.locality, LocalityOutcome::kLocal);
  // No client region: the whole cluster, no locality.
  auto all = f.picks(100, client(""));
  EXPECT_EQ(all["east"] + all["west"], 100);
  EXPECT_GT(all["west"], 0);
}

TEST(Locality, SpillFollowsTheDeficitAndFallsGradually) {
  Fixture f({"east", "east", "east", "east", "west", "west"});
  f.strategy->tick();
  f.set_usable("a", false);  // 3 of 4: above min_healthy_fraction 0.5
  EXPECT_EQ(f.picks(200, client("east"))["east"], 200);
  f.set_usable("b", false);
  f.set_usable("c", false);  // 1 of 4: deficit (0.5 - 0.25) / 0.5 = 0.5
  EXPECT_DOUBLE_EQ(f.locality->regions()[0].spill, 0.5);
  auto split = f.picks(4000, client("east"));
  EXPECT_NEAR(split["west"], 2000, 200);
  EXPECT_EQ(split["east"] + split["west"], 4000);
  f.set_usable("d", false);  // nothing usable: everything spills
  EXPECT_DOUBLE_EQ(f.locality->regions()[0].spill, 1.0);
  EXPECT_EQ(f.picks(100, client("east"))["west"], 100);
  for (auto name : {"a", "b", "c", "d"}) f.set_usable(name, true);  // ticks four times
  // Back to healthy: the spill falls by 0.05 per tick, not at once.
  EXPECT_NEAR(f.locality->regions()[0].spill, 0.8, 1e-9);
  for (int i = 0; i < 16; ++i) f.strategy->tick();
  EXPECT_DOUBLE_EQ(f.locality->regions()[0].spill, 0.0);
}

TEST(Locality, NearestFallbackIsTheLowestMeasuredLatency) {
  Fixture f({"east", "mid", "far"});
  f.endpoints[1].state->observe_latency(40);
  f.endpoints[2].state->observe_latency(10);  // "far" is named far but answers fastest
  f.strategy->tick();
  f.set_usable("a", false);
  EXPECT_EQ(f.picks(50, client("east")), (std::map<std::string, int>{{"far", 50}}));
  EXPECT_EQ(f.locality->regions()[0].name, "east");  // regions sort by name
  EXPECT_EQ(f.locality->regions()[0].nearest, "far");
  // An unhealthy region is not a fallback while a healthy one exists.
  f.set_usable("c", false);
  EXPECT_EQ(f.picks(50, client("east")), (std::map<std::string, int>{{"mid", 50}}));
  auto ctx = client("east");
  f.strategy->pick(ctx, *f.lb);
  EXPECT_EQ(ctx.locality, LocalityOutcome::kFallback);
  // A client from a region without endpoints goes to the nearest healthy region.
  f.set_usable("a", true);
  f.set_usable("c", true);
  EXPECT_EQ(f.picks(50, client("mars")), (std::map<std::string, int>{{"far", 50}}));
}

TEST(Locality, CrossRegionPolicies) {
  Fixture f({"east", "east", "east", "east", "west"});
  f.strategy->tick();
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
  // deny: never leaves; nothing usable is a refusal.
  f.set_usable("d", false);
  auto deny = client("east", {}, config::CrossRegion::kDeny);
  EXPECT_EQ(f.strategy->pick(deny, *f.lb), nullptr);
  EXPECT_EQ(deny.locality, LocalityOutcome::kDenied);
}

// A region that recovered comes back to failover_only gradually: its spill falls by 0.05 per
// tick, and it gets its traffic back only once that reached 0 (no swinging on a flap).
TEST(Locality, FailoverOnlyReturnsAfterTheHysteresis) {
  Fixture f({"east", "east", "west"});
  f.strategy->tick();
  f.set_usable("a", false);  // 0.5: healthy at the default 0.5
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["east"], 50);
  f.set_usable("b", false);  // nothing usable: spill 1
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["west"], 50);
  f.set_usable("a", true);
  f.set_usable("b", true);  // healthy again, but the spill falls gradually
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["west"], 50);
  for (int i = 0; i < 25; ++i) f.strategy->tick();
  EXPECT_EQ(f.picks(50, client("east", {}, config::CrossRegion::kFailoverOnly))["east"], 50);
}

TEST(Locality, FallbackAnyAndNone) {
  Fixture any({"east", "west", "north"}, config::Fallback::kAny);
  any.strategy->tick();
  any.set_usable("a", false);
  auto spread = any.picks(300, client("east"));
  EXPECT_GT(spread["west"], 50);
  EXPECT_GT(spread["north"], 50);
  Fixture none({"east", "west"}, config::Fallback::kNone);
  none.strategy->tick();
  none.set_usable("a", false);
  EXPECT_EQ(none.picks(10, client("east")), (std::map<std::string, int>{{"-", 10}}));
}

TEST(Locality, ZonePreferenceInsideTheRegion) {
  Fixture f({"east/1a", "east/1a", "east/1b", "west/2a"});
  f.strategy->tick();
  std::map<std::string, int> names;
  for (int i = 0; i < 100; ++i)
    ++names[f.strategy->pick(client("east", "1b"), *f.lb)->address_text];
  EXPECT_EQ(names, (std::map<std::string, int>{{"c", 100}}));
  f.set_usable("c", false);  // its zone is down: the rest of the region
  names.clear();
  for (int i = 0; i < 100; ++i)
    ++names[f.strategy->pick(client("east", "1b"), *f.lb)->address_text];
  EXPECT_EQ(names["a"] + names["b"], 100);
}

// resource_aware compares scores within the chosen region only: a loaded local endpoint still
// wins over an idle one in another region.
TEST(Locality, ResourceAwareScoresWithinTheRegion) {
  auto eps = testing::endpoints({1, 1, 1});
  eps[0].region = "east";
  eps[1].region = "east";
  eps[2].region = "west";
  auto now = steady_now_ns();
  LoadReport busy, idle;
  busy.cpu = 0.9;
  busy.memory = 0.9;
  idle.cpu = 0.0;
  idle.memory = 0.0;
  apply_load_report(*eps[0].state, busy, now);
  apply_load_report(*eps[1].state, busy, now);
  apply_load_report(*eps[2].state, idle, now);
  eps[1].state->active_requests = 50;
  config::Cluster cluster;
  cluster.strategy = config::Strategy::kResourceAware;
  cluster.locality = config::Locality{};
  auto s = build_strategy(cluster, eps);
  s->tick();
  WorkerLbState lb(eps.size(), 5);
  s->prepare(lb);
  // Shares are by headroom inside the region: a (no requests in flight) gets most, b (50 in
  // flight) the rest, the idle west endpoint none.
  std::map<std::string, int> names;
  for (int i = 0; i < 200; ++i) ++names[s->pick(client("east"), lb)->address_text];
  EXPECT_EQ(names["c"], 0);
  EXPECT_GT(names["a"], 2 * names["b"]);
}

// Bounded load inside a region counts the region's requests in flight: with the cluster's
// average, every endpoint of a busy region would be over its cap and the hot key would stay.
TEST(Locality, BoundedLoadCountsTheRegion) {
  std::vector<uint32_t> weights(10, 1);
  auto eps = testing::endpoints(weights);
  for (auto& ep : eps) {
    ep.region = ep.index < 2 ? "east" : "west";
    ep.address_text = "10.0.0." + std::to_string(ep.index + 1) + ":80";
  }
  config::Cluster cluster;
  cluster.strategy = config::Strategy::kConsistentHash;
  cluster.hash.bounded_load = 1.25;
  cluster.locality = config::Locality{};
  auto s = build_strategy(cluster, eps);
  s->tick();
  WorkerLbState lb(eps.size(), 5);
  s->prepare(lb);
  auto ctx = client("east");
  ctx.hash_key = "hot";
  ctx.has_hash_key = true;
  ctx.usable_endpoints = 10;
  const Endpoint* owner = s->pick(ctx, lb);
  ASSERT_EQ(owner->region, "east");
  const Endpoint& other = eps[owner->index == 0 ? 1 : 0];
  owner->state->active_requests = 10;
  other.state->active_requests = 3;
  ctx.cluster_in_flight = 13;  // all of it in east: cap ceil(1.25 * 14 / 2) = 9
  EXPECT_EQ(s->pick(ctx, lb)->address_text, other.address_text);
}

TEST(Locality, WarmTargetsAreTheNearestRegionsUsableEndpoints) {
  Fixture f({"east", "west", "west", "far"});
  f.endpoints[1].state->observe_latency(5);
  f.endpoints[2].state->observe_latency(5);
  f.endpoints[3].state->observe_latency(50);
  f.strategy->tick();
  f.set_usable("c", false);
  auto targets = f.locality->warm_targets("east");
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0]->address_text, "b");
  EXPECT_TRUE(f.locality->warm_targets("nowhere").empty());
}

}  // namespace
}  // namespace switchyard::balancer
