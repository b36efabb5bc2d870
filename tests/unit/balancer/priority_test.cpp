// Priority levels (README, "Priority levels"; SRV records' priority): traffic goes to the
// lowest-numbered level with a usable endpoint, and moves back when it recovers.

#include <gtest/gtest.h>

#include "test_util.h"

namespace switchyard::balancer {
namespace {

// a, b at priority 0, c at priority 1, d at priority 5.
std::unique_ptr<testing::Cluster> levels(const std::string& strategy) {
  auto c = std::make_unique<testing::Cluster>(testing::weights({1, 1, 1, 1}, strategy));
  c->endpoint(2).priority = 1;
  c->endpoint(3).priority = 5;
  c->build();
  return c;
}

class Priority : public ::testing::TestWithParam<std::string> {
 protected:
  testing::Cluster* levels_of(const std::string& strategy) {
    cluster_ = levels(strategy);
    return cluster_.get();
  }
  std::unique_ptr<testing::Cluster> cluster_;
};

TEST_P(Priority, TheLowestLevelWithAUsableEndpointTakesEverything) {
  auto& c = *levels_of(GetParam());
  PickRequest req;
  req.hash_key = "k";
  req.has_hash_key = GetParam() == "maglev";
  auto h = c.histogram(200, req);
  EXPECT_EQ(h.count("c") + h.count("d"), 0u) << GetParam();
  c.set_healthy(0, false);
  h = c.histogram(200, req);
  EXPECT_EQ(h, (std::map<std::string, int>{{"b", 200}})) << GetParam();
  c.set_healthy(1, false);
  EXPECT_EQ(c.histogram(100, req), (std::map<std::string, int>{{"c", 100}})) << GetParam();
  c.set_healthy(2, false);
  EXPECT_EQ(c.histogram(100, req), (std::map<std::string, int>{{"d", 100}})) << GetParam();
  c.set_healthy(0, true);
  EXPECT_EQ(c.histogram(100, req), (std::map<std::string, int>{{"a", 100}})) << GetParam();
}

TEST_P(Priority, BeforeTheTickNoticesALevelEmptiedItFallsToTheWholeCluster) {
  auto& c = *levels_of(GetParam());
  c.health(0).healthy = false;  // no tick: the active level is still 0
  c.health(1).healthy = false;
  const EndpointRef* ref = c.pick();
  ASSERT_NE(ref, nullptr);
  EXPECT_GE(ref->index, 2u);
}

INSTANTIATE_TEST_SUITE_P(Strategies, Priority,
                         ::testing::Values("round_robin", "least_request", "random", "maglev"));

}  // namespace
}  // namespace switchyard::balancer
