#include "switchyard/registry/registry.h"

#include <gtest/gtest.h>

#include "switchyard/config/loader.h"
#include "switchyard/metrics/exposition.h"

namespace switchyard::registry {
namespace {

std::shared_ptr<const config::Config> load(const std::string& endpoints) {
  std::string yaml =
      "listeners:\n  - name: in\n    listen: 127.0.0.1:0\n    routes: [ { cluster: app } ]\n"
      "clusters:\n  - name: app\n    endpoints:\n" +
      endpoints;
  auto r = config::load_string(yaml, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.config;
}

// An endpoint that stays in the config keeps its live state (health, ejection, in-flight)
// across a rebuild; a new one starts fresh; removed ones leave the snapshot.
TEST(Registry, PersistingEndpointsKeepState) {
  metrics::Metrics m;
  Registry reg(m);
  auto s1 = reg.build(load("      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n"));
  auto& a = *s1->clusters[0]->endpoints[0].state;
  a.healthy = false;
  a.active_requests = 3;
  auto s2 = reg.build(load("      - address: 127.0.0.1:9003\n      - address: 127.0.0.1:9001\n"));
  ASSERT_EQ(s2->clusters[0]->endpoints.size(), 2u);
  EXPECT_GT(s2->version, s1->version);
  const auto& kept = s2->clusters[0]->endpoints[1];
  EXPECT_EQ(kept.address_text, "127.0.0.1:9001");
  EXPECT_EQ(kept.state.get(), &a);
  EXPECT_FALSE(kept.state->healthy);
  EXPECT_EQ(kept.state->active_requests, 3);
  EXPECT_EQ(kept.index, 1u);
  const auto& fresh = s2->clusters[0]->endpoints[0];
  EXPECT_TRUE(fresh.state->healthy);
  EXPECT_NE(fresh.state->id, a.id);
  EXPECT_NE(s2->clusters[0]->strategy, nullptr);
  EXPECT_EQ(reg.current(), s2);
}

// The scrape-time gauges read the live state.
TEST(Registry, GaugesReadLiveState) {
  metrics::Metrics m;
  Registry reg(m);
  auto s = reg.build(load("      - address: 127.0.0.1:9001\n"));
  s->clusters[0]->endpoints[0].state->active_requests = 7;
  s->clusters[0]->endpoints[0].state->breaker = registry::Breaker::kOpen;
  auto text = metrics::render(*s, m);
  EXPECT_NE(
      text.find(
          "switchyard_endpoint_active_requests{cluster=\"app\",endpoint=\"127.0.0.1:9001\"} 7"),
      std::string::npos);
  EXPECT_NE(text.find("switchyard_endpoint_ejected{cluster=\"app\",endpoint=\"127.0.0.1:9001\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace switchyard::registry
