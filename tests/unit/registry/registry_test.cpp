#include "switchyard/registry/registry.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "switchyard/balancer/policy.h"
#include "switchyard/config/loader.h"

namespace switchyard::registry {
namespace {

std::shared_ptr<const config::Config> load(const std::string& endpoints) {
  std::string yaml =
      "listeners:\n  - name: in\n    listen: 127.0.0.1:0\n    routes: [ { cluster: app } ]\n"
      "clusters:\n  - name: app\n    locality: { client_zone: \"header:X-Zone\" }\n"
      "    endpoints:\n" +
      endpoints;
  auto r = config::load_string(yaml, "t.yaml", balancer::schema());
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.config;
}

// An endpoint that stays in the config (same cluster, same address) keeps its id and key
// across a rebuild, whatever its position; a new one gets a new id, never reused.
TEST(Registry, PersistingEndpointsKeepTheirIdentity) {
  Registry reg;
  auto s1 = reg.build(load("      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n"));
  const auto a = s1->clusters[0].endpoints[0];
  auto s2 = reg.build(load("      - address: 127.0.0.1:9003\n      - address: 127.0.0.1:9001\n"));
  ASSERT_EQ(s2->clusters[0].endpoints.size(), 2u);
  EXPECT_GT(s2->version, s1->version);
  const auto& kept = s2->clusters[0].endpoints[1];
  EXPECT_EQ(kept.address_text, "127.0.0.1:9001");
  EXPECT_EQ(kept.id, a.id);
  EXPECT_EQ(kept.key, a.key);
  EXPECT_EQ(kept.key, std::string("app") + '\0' + "127.0.0.1:9001");
  EXPECT_EQ(kept.index, 1u);
  const auto& fresh = s2->clusters[0].endpoints[0];
  EXPECT_NE(fresh.id, a.id);
  EXPECT_NE(fresh.id, s1->clusters[0].endpoints[1].id);  // 9002's id is not reused
  EXPECT_EQ(reg.current(), s2);
}

// A listener's asserted headers: X-Client-Region and its clusters' region and zone headers.
TEST(Registry, AssertedHeaders) {
  Registry reg;
  auto s = reg.build(load("      - address: 127.0.0.1:9001\n"));
  const auto& h = s->listeners[0].asserted_headers;
  EXPECT_NE(std::find(h.begin(), h.end(), "X-Client-Region"), h.end());
  EXPECT_NE(std::find(h.begin(), h.end(), "X-Zone"), h.end());
}

}  // namespace
}  // namespace switchyard::registry
