#include "switchyard/control/runtime.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "switchyard/config/loader.h"

namespace switchyard::control {
namespace {

std::shared_ptr<const config::Config> load(const std::string& endpoints,
                                           const std::string& strategy = "round_robin") {
  std::string yaml =
      "listeners:\n  - name: in\n    listen: 127.0.0.1:0\n    routes: [ { cluster: app } ]\n"
      "clusters:\n  - name: app\n    strategy: " +
      strategy + "\n    endpoints:\n" + endpoints;
  auto r = config::load_string(yaml, "t.yaml", balancer::schema());
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.config;
}

// An endpoint that stays in the config keeps its state in every module (health, breaker,
// in-flight count, load report) across a reload, whatever the policy; a new one starts
// fresh; removed ones leave the snapshot.
TEST(Runtime, PersistingEndpointsKeepTheirState) {
  boost::asio::io_context ioc;
  Runtime runtime(ioc);
  auto s1 =
      runtime.apply(load("      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n"));
  const auto& a = s1->clusters[0]->members()[0];
  a.breaker->position = breaker::Position::kOpen;
  a.breaker->health_score = 0.25;
  a.load->active_requests = 3;
  auto s2 = runtime.apply(
      load("      - address: 127.0.0.1:9003\n      - address: 127.0.0.1:9001\n", "maglev"));
  EXPECT_GT(s2->version, s1->version);
  EXPECT_EQ(runtime.current(), s2);
  const auto& members = s2->clusters[0]->members();
  ASSERT_EQ(members.size(), 2u);
  const auto& kept = members[1];
  EXPECT_EQ(kept.endpoint->address_text, "127.0.0.1:9001");
  EXPECT_EQ(kept.health, a.health);
  EXPECT_EQ(kept.breaker, a.breaker);
  EXPECT_EQ(kept.load, a.load);
  EXPECT_EQ(kept.breaker->position.load(), breaker::Position::kOpen);
  EXPECT_DOUBLE_EQ(kept.breaker->health_score.load(), 0.25);
  EXPECT_EQ(kept.load->active_requests, 3);
  EXPECT_EQ(kept.index, 1u);
  EXPECT_NE(members[0].load, a.load);
  EXPECT_EQ(members[0].breaker->position.load(), breaker::Position::kClosed);
  EXPECT_EQ(s2->clusters[0]->policy().name(), "maglev");
}

// The tick keeps the front door's usable counts (bounded load's denominator) current.
TEST(Runtime, TickCountsUsableEndpoints) {
  boost::asio::io_context ioc;
  Runtime runtime(ioc);
  auto s =
      runtime.apply(load("      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n",
                         "consistent_hash\n    hash: { key: \"header:K\", bounded_load: 1.25 }"));
  const auto& cluster = *s->clusters[0];
  const_cast<health::EndpointHealth*>(cluster.members()[0].health)->healthy = false;
  runtime.tick();
  // One usable endpoint: every key goes to it, whatever its cap would have been over two.
  balancer::WorkerCluster worker;
  cluster.prepare(worker, 1);
  for (std::string_view key : {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"}) {
    balancer::PickRequest req;
    req.hash_key = key;
    req.has_hash_key = true;
    balancer::PickMemo memo;
    balancer::Pick p;
    cluster.pick(req, memo, worker, p);
    ASSERT_NE(p.ref, nullptr);
    EXPECT_EQ(p.ref->index, 1u);
    cluster.release(p);
  }
}

}  // namespace
}  // namespace switchyard::control
